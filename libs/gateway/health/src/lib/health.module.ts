import { type DynamicModule, Module } from '@nestjs/common';
import { ProxyModule } from '@helix/gateway-proxy';
import { GATEWAY_BUILD_INFO, type GatewayBuildInfo } from './build-info';
import { HealthController } from './health.controller';
import { UpstreamHealthChecker } from './upstream-health.checker';

@Module({})
export class HealthModule {
  static forRoot(build: GatewayBuildInfo): DynamicModule {
    return {
      module: HealthModule,
      imports: [ProxyModule],
      controllers: [HealthController],
      providers: [UpstreamHealthChecker, { provide: GATEWAY_BUILD_INFO, useValue: build }],
      exports: [UpstreamHealthChecker],
    };
  }
}
