import { Module } from '@nestjs/common';
import { BodyGuard } from './body-guard';
import { EdgePolicies } from './edge-policies';
import { OverloadMonitor } from './overload-monitor';

@Module({
  providers: [EdgePolicies, BodyGuard, OverloadMonitor],
  exports: [EdgePolicies, BodyGuard, OverloadMonitor],
})
export class EdgeModule {}
