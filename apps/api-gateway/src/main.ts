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
  readTlsPair,
  superviseWorkers,
  type TlsPair,
  workerCount,
} from '@helix/gateway-server';
import { AppModule } from './app/app.module';

/** The configuration, and the TLS pair when the public port speaks TLS; exits 1 when bad. */
function loadConfigOrExit(): { config: GatewayConfig; tls: TlsPair | undefined } {
  try {
    const config = loadGatewayConfig(readEnvironment());
    const { TLS_CERT_FILE, TLS_KEY_FILE } = config;
    const tls =
      TLS_CERT_FILE && TLS_KEY_FILE ? readTlsPair(TLS_CERT_FILE, TLS_KEY_FILE) : undefined;
    return { config, tls };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}

async function bootstrap(): Promise<void> {
  const { config, tls } = loadConfigOrExit();
  const logger = createRootLogger(config);
  if (cluster.isPrimary && workerCount(config) > 1) {
    superviseWorkers(config, logger);
    return;
  }
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register(config, logger),
    new GatewayHttpAdapter(config, tls),
    {
      bodyParser: false,
      logger: new PinoNestLogger(logger),
    },
  );
  const tlsConnections = attachGateway(app);
  try {
    await app.listen(config.SERVICE_PORT, config.HOST);
  } catch (err) {
    process.stderr.write(
      `Cannot listen on ${config.HOST}:${config.SERVICE_PORT} (SERVICE_PORT, HOST): ${(err as NodeJS.ErrnoException).code ?? err}\n`,
    );
    process.exit(1);
  }
  installGracefulShutdown(app, tlsConnections);
  const { address, port } = app.getHttpServer().address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  const protocols = tls ? ' (HTTP/2 and HTTP/1.1)' : '';
  new Logger('Gateway').log(
    `Helix API Gateway listening on ${scheme}://${address}:${port}${protocols}`,
  );
}

void bootstrap();
