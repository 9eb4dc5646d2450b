import 'reflect-metadata';
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  ConfigError,
  type GatewayConfig,
  loadGatewayConfig,
  readEnvironment,
} from '@helix/gateway-config';
import { createRootLogger, PinoNestLogger } from '@helix/gateway-observability';
import {
  attachGateway,
  GatewayHttpAdapter,
  installGracefulShutdown,
  superviseWorkers,
  workerCount,
} from '@helix/gateway-server';
import { AppModule } from './app/app.module';

function loadConfigOrExit(): GatewayConfig {
  try {
    return loadGatewayConfig(readEnvironment());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}

async function bootstrap(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createRootLogger(config);
  if (cluster.isPrimary && workerCount(config) > 1) {
    superviseWorkers(config, logger);
    return;
  }
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register(config, logger),
    new GatewayHttpAdapter(config),
    {
      bodyParser: false,
      logger: new PinoNestLogger(logger),
    },
  );
  attachGateway(app);
  try {
    await app.listen(config.SERVICE_PORT, config.HOST);
  } catch (err) {
    process.stderr.write(
      `Cannot listen on ${config.HOST}:${config.SERVICE_PORT} (SERVICE_PORT, HOST): ${(err as NodeJS.ErrnoException).code ?? err}\n`,
    );
    process.exit(1);
  }
  installGracefulShutdown(app);
  const { address, port } = app.getHttpServer().address() as AddressInfo;
  new Logger('Gateway').log(`Helix API Gateway listening on http://${address}:${port}`);
}

void bootstrap();
