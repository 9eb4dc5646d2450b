import { startStubUpstream, type StubUpstream } from '@helix/shared-testing';
import { type DemoService, readDemoConfig } from './app/demo-services.config';

async function startService(host: string, { name, port }: DemoService): Promise<StubUpstream> {
  try {
    // A demo keeps no history to speak of: nothing reads it, and a soak would grow it forever.
    return await startStubUpstream({ name, host, port, historyLimit: 100 });
  } catch (err) {
    throw new Error(`demo ${name} cannot listen on ${host}:${port}: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  const { host, services } = readDemoConfig(process.env);
  const started = await Promise.allSettled(services.map((service) => startService(host, service)));
  const stubs = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(stubs.map((stub) => stub.close()));
    throw failed.reason;
  }
  for (const stub of stubs) process.stdout.write(`demo ${stub.name} listening on ${stub.url}\n`);

  const shutdown = (): void => {
    void Promise.all(stubs.map((stub) => stub.close())).then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
