import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { EdgeModule } from '@helix/gateway-edge';
import { RouterModule } from '@helix/gateway-router';
import { GatewayExceptionFilter } from './gateway-exception.filter';
import { RouteReloader } from './route-reloader';

/** What runs the router as a server: the route file's hot reload and Nest's error filter. */
@Module({
  imports: [EdgeModule, RouterModule],
  providers: [RouteReloader, { provide: APP_FILTER, useClass: GatewayExceptionFilter }],
})
export class ServerModule {}
