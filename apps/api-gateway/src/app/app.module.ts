import { type DynamicModule, Module } from '@nestjs/common';
import { type GatewayConfig, GatewayConfigModule } from '@helix/gateway-config';
import { HealthModule } from '@helix/gateway-health';
import { ProxyModule } from '@helix/gateway-proxy';
import { name, version } from '../../package.json';

@Module({})
export class AppModule {
  static register(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatewayConfigModule.forRoot(config),
        ProxyModule,
        HealthModule.forRoot({ name, version }),
      ],
    };
  }
}
