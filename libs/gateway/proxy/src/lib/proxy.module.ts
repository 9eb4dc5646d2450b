import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { EdgeModule } from '@helix/gateway-edge';
import { GatewayExceptionFilter } from './gateway-exception.filter';
import { GatewayLifecycle } from './gateway-lifecycle';
import { GatewayPipeline } from './gateway-pipeline';
import { RouteReloader } from './route-reloader';
import { UpstreamRegistry } from './upstream-registry';

@Module({
  imports: [EdgeModule],
  providers: [
    GatewayLifecycle,
    UpstreamRegistry,
    GatewayPipeline,
    RouteReloader,
    { provide: APP_FILTER, useClass: GatewayExceptionFilter },
  ],
  exports: [GatewayLifecycle, UpstreamRegistry, GatewayPipeline],
})
export class ProxyModule {}
