import { type DynamicModule, Module } from '@nestjs/common';
import { EdgeModule } from '@helix/gateway-edge';
import { RouterModule } from '@helix/gateway-router';
import { StatusModule } from '@helix/gateway-status';
import { GATEWAY_BUILD_INFO, type GatewayBuildInfo } from './build-info';
import { HealthController } from './health.controller';
import { StatusStateReporter } from './status-state.reporter';
import { UpstreamHealthChecker } from './upstream-health.checker';

@Module({})
export class HealthModule {
  static forRoot(build: GatewayBuildInfo): DynamicModule {
    return {
      module: HealthModule,
      imports: [EdgeModule, RouterModule, StatusModule],
      controllers: [HealthController],
      providers: [
        UpstreamHealthChecker,
        StatusStateReporter,
        { provide: GATEWAY_BUILD_INFO, useValue: build },
      ],
      exports: [UpstreamHealthChecker],
    };
  }
}
