import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { EdgeModule } from '@helix/gateway-edge';
import { GatewayExceptionFilter } from './gateway-exception.filter';
import { GatewayPipeline } from './gateway-pipeline';
import { UpstreamRegistry } from './upstream-registry';

@Module({
  imports: [EdgeModule],
  providers: [
    UpstreamRegistry,
    GatewayPipeline,
    { provide: APP_FILTER, useClass: GatewayExceptionFilter },
  ],
  exports: [UpstreamRegistry, GatewayPipeline],
})
export class ProxyModule {}
