import { type DynamicModule, Global, Module } from '@nestjs/common';
import { GATEWAY_CONFIG } from './config.tokens';
import type { GatewayConfig } from './load-config';

/** Makes the configuration parsed at boot injectable everywhere as GATEWAY_CONFIG. */
@Global()
@Module({})
export class GatewayConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: GatewayConfigModule,
      providers: [{ provide: GATEWAY_CONFIG, useValue: config }],
      exports: [GATEWAY_CONFIG],
    };
  }
}
