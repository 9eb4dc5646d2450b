import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GatewayProcess,
  httpRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { closedPort } from './support';

/** The contract's bound: a change takes effect within 2 s, with no signal. */
const WITHIN_MS = 2000;

function table(routes: [prefix: string, stub: StubUpstream][]): string {
  return [
    'routes:',
    ...routes.map(
      ([prefix, stub]) =>
        `  - { prefix: ${prefix}, service: ${stub.name}, targets: [${stub.url}] }`,
    ),
  ].join('\n');
}

/** How long until `path` answers 200 through the gateway; throws past the contract's bound. */
async function servedWithin(gateway: GatewayProcess, path: string): Promise<number> {
  const started = Date.now();
  while ((await httpRequest(`${gateway.url}${path}`)).status !== 200) {
    if (Date.now() - started > WITHIN_MS + 1000) throw new Error(`${path} not served in time`);
    await sleep(25);
  }
  return Date.now() - started;
}

/**
 * A folder laid out as the kubelet mounts a ConfigMap: the file is a symlink through `..data`,
 * itself a symlink to a timestamped folder, and an update swaps `..data` atomically.
 */
function configMapVolume(text: string): { file: string; update: (text: string) => void } {
  const root = mkdtempSync(join(tmpdir(), 'helix-configmap-'));
  let version = 0;
  const writeVersion = (content: string): string => {
    const name = `..2026_12_02_00_00_0${version++}`;
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'routes.yaml'), content);
    return name;
  };
  symlinkSync(writeVersion(text), join(root, '..data'));
  symlinkSync('..data/routes.yaml', join(root, 'routes.yaml'));
  return {
    file: join(root, 'routes.yaml'),
    update: (content) => {
      symlinkSync(writeVersion(content), join(root, '..data_tmp'));
      renameSync(join(root, '..data_tmp'), join(root, '..data'));
    },
  };
}

function metricLine(text: string, name: string): string | undefined {
  return text.split('\n').find((line) => line.startsWith(name));
}

describe('the watched route file', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let a: StubUpstream;
  let b: StubUpstream;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      startStubUpstream({ name: 'a' }),
      startStubUpstream({ name: 'b' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function gateway(env: Record<string, string>): Promise<GatewayProcess> {
    const started = await startGateway(env);
    cleanups.push(() => started.stop());
    return started;
  }

  it('follows a Kubernetes ..data swap within 2 s, with no signal, and counts it', async () => {
    const volume = configMapVolume(table([['/api/a', a]]));
    const metricsPort = await closedPort();
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: volume.file,
      METRICS_PORT: String(metricsPort),
    });
    expect((await httpRequest(`${gw.url}/api/b/x`)).status).toBe(404);

    volume.update(
      table([
        ['/api/a', a],
        ['/api/b', b],
      ]),
    );
    expect(await servedWithin(gw, '/api/b/x')).toBeLessThan(WITHIN_MS);
    expect((await httpRequest(`${gw.url}/api/b/x`)).json()).toMatchObject({ service: 'b' });

    const metrics = (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString();
    const sha256 = createHash('sha256').update(readFileSync(volume.file)).digest('hex');
    expect(metricLine(metrics, 'helix_gateway_route_reloads_total{result="applied"}')).toMatch(
      / 1$/,
    );
    expect(metricLine(metrics, 'helix_gateway_route_table_info{')).toBe(
      `helix_gateway_route_table_info{sha256="${sha256}"} 1`,
    );
  });

  it("follows an editor's rename over the file, and refuses an invalid one, keeping the table", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'helix-routes-'));
    const file = join(dir, 'routes.yaml');
    writeFileSync(file, table([['/api/a', a]]));
    const gw = await gateway({ GATEWAY_ROUTES_FILE: file });

    writeFileSync(
      `${file}.swp`,
      table([
        ['/api/a', a],
        ['/api/b', b],
      ]),
    );
    renameSync(`${file}.swp`, file);
    expect(await servedWithin(gw, '/api/b/x')).toBeLessThan(WITHIN_MS);

    writeFileSync(`${file}.swp`, 'routes:\n  - { prefix: /api/a, service: a, targets: [nope] }\n');
    renameSync(`${file}.swp`, file);
    const started = Date.now();
    while (!gw.output().includes('reload refused') && Date.now() - started < WITHIN_MS) {
      await sleep(25);
    }
    expect(gw.output()).toMatch(
      /route file changed: reload refused, the previous route table stays in force: Invalid configuration: GATEWAY_ROUTES_FILE=.* routes\[0\] \(prefix \/api\/a\) key \\"targets\\"/,
    );
    expect((await httpRequest(`${gw.url}/api/b/x`)).json()).toMatchObject({ service: 'b' });
    // Refused once: the unchanged bad file is not read and refused again on every poll.
    await sleep(300);
    expect(gw.output().match(/reload refused/g)).toHaveLength(1);
  });

  it('with workers, the primary validates once and every worker loads the new table', async () => {
    const volume = configMapVolume(table([['/api/a', a]]));
    const gw = await gateway({ GATEWAY_ROUTES_FILE: volume.file, GATEWAY_WORKERS: '2' });
    for (let i = 0; i < 50 && (gw.output().match(/listening on/g) ?? []).length < 2; i++) {
      await sleep(100);
    }

    volume.update('routes:\n  - { prefix: /api/a, service: a, targets: [nope] }\n');
    await sleep(WITHIN_MS);
    expect(gw.output().match(/reload refused/g)).toHaveLength(1);
    expect(gw.output()).toMatch(/route file changed: reload refused, the workers keep their table/);

    volume.update(
      table([
        ['/api/a', a],
        ['/api/b', b],
      ]),
    );
    await servedWithin(gw, '/api/b/x');
    // New connections land on either worker: every one of them serves the new route.
    const statuses = await Promise.all(
      Array.from({ length: 40 }, () =>
        httpRequest(`${gw.url}/api/b/x`, { headers: { connection: 'close' } }).then(
          (r) => r.status,
        ),
      ),
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(gw.output().match(/route table reloaded from/g)).toHaveLength(2);
  });
});
