import { Module } from '@nestjs/common';
import { EdgeModule } from '@helix/gateway-edge';
import { GatewayLifecycle } from './gateway-lifecycle';
import { GatewayPipeline } from './gateway-pipeline';
import { UpstreamRegistry } from './upstream-registry';

/** The route table in force and the pipeline that runs every request through it. */
@Module({
  imports: [EdgeModule],
  providers: [GatewayLifecycle, UpstreamRegistry, GatewayPipeline],
  exports: [GatewayLifecycle, UpstreamRegistry, GatewayPipeline],
})
export class RouterModule {}
