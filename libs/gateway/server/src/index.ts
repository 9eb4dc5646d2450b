export * from './lib/attach-gateway';
export * from './lib/gateway-http.adapter';
export * from './lib/graceful-shutdown';
export * from './lib/tls-certificate';
export * from './lib/server.module';
export * from './lib/worker-supervisor';
