import { type DynamicModule, Module } from '@nestjs/common';
import { type GatewayConfig, GatewayConfigModule } from '@helix/gateway-config';
import { HealthModule } from '@helix/gateway-health';
import { ObservabilityModule } from '@helix/gateway-observability';
import { ServerModule } from '@helix/gateway-server';
import { StatusModule } from '@helix/gateway-status';
import type { Logger } from 'pino';
import { name, version } from '../../package.json';

@Module({})
export class AppModule {
  static register(config: GatewayConfig, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatewayConfigModule.forRoot(config),
        ObservabilityModule.forRoot(logger, version),
        ServerModule,
        StatusModule,
        HealthModule.forRoot({ name, version }),
      ],
    };
  }
}
