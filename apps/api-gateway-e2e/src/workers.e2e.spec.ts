import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest, startGateway } from '@helix/shared-testing';
import { useStub } from './support';

function workerPids(output: string): number[] {
  return [...output.matchAll(/"worker":(\d+),"msg":"worker started"/g)].map((m) => Number(m[1]));
}

describe('GATEWAY_WORKERS (node:cluster)', () => {
  const auth = useStub('auth');

  it('serves from two workers on one port, replaces a killed worker without losing other requests, and drains on SIGTERM', async () => {
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.stub.url,
      GATEWAY_WORKERS: '2',
      // A connection the killed worker had taken must not hold the final drain for 30 s.
      SHUTDOWN_TIMEOUT_MS: '3000',
    });
    // A failed expectation must not leave the primary and its workers running.
    try {
      for (let i = 0; i < 50 && (gateway.output().match(/listening on/g) ?? []).length < 2; i++)
        await sleep(100);
      expect(gateway.output().match(/listening on/g)).toHaveLength(2);
      const [victim] = workerPids(gateway.output());

      let stop = false;
      const statuses: number[] = [];
      const failures: string[] = [];
      const load = (async () => {
        while (!stop) {
          // A new connection per request: a request is in flight on the victim only while it runs.
          await httpRequest(`${gateway.url}/api/auth/load`, {
            agent: false,
            signal: AbortSignal.timeout(2000),
          }).then(
            (res) => statuses.push(res.status),
            (err: Error) => failures.push(err.message),
          );
        }
      })();
      await sleep(300);
      process.kill(victim, 'SIGKILL');
      await sleep(300);
      const health = await httpRequest(`${gateway.url}/health`);
      expect(health.status).toBe(200);
      for (let i = 0; i < 50 && workerPids(gateway.output()).length < 3; i++) await sleep(100);
      await sleep(300);
      stop = true;
      await load;

      expect(gateway.output()).toContain('worker died, starting another');
      expect(workerPids(gateway.output())).toHaveLength(3);
      // At most the one request that was on the victim when it died.
      expect(failures.length).toBeLessThanOrEqual(1);
      expect(statuses.length).toBeGreaterThan(20);
      expect(statuses.every((s) => s === 200)).toBe(true);

      const exited = once(gateway.child, 'exit');
      gateway.child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
      expect(gateway.output()).toContain('every worker has drained, exiting');
    } finally {
      await gateway.stop();
    }
  }, 60_000);
});
