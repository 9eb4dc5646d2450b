import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import {
  type GatewayProcess,
  httpRequest,
  runGatewayToExit,
  startGateway,
} from '@helix/shared-testing';
import { closeSession, h2Request, openSession } from './http2-client';
import { useStub } from './support';
import {
  type LeafCertificate,
  servedFingerprint,
  type TestCertificates,
  useTestCertificates,
  writeFileAtomically,
} from './tls';

const POLL_MS = 100;

/** Polls new handshakes until they present `expected`; resolves with the last one seen. */
async function fingerprintBecomes(port: number, ca: string, expected: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let seen = await servedFingerprint(port, ca);
  while (seen !== expected && Date.now() < deadline) {
    await sleep(POLL_MS);
    seen = await servedFingerprint(port, ca);
  }
  return seen;
}

interface LogLine {
  level: string;
  msg: string;
}

/** Polls the gateway's output after `mark` for a JSON log line that `matches`. */
async function logLineAfter(
  gateway: GatewayProcess,
  mark: number,
  matches: (line: LogLine) => boolean,
  timeoutMs: number,
): Promise<LogLine | undefined> {
  const deadline = Date.now() + timeoutMs;
  do {
    const found = gateway
      .output()
      .slice(mark)
      .split('\n')
      .filter((text) => text.startsWith('{'))
      .map((text) => JSON.parse(text) as LogLine)
      .find(matches);
    if (found) return found;
    await sleep(POLL_MS);
  } while (Date.now() < deadline);
  return undefined;
}

const refusedReload = (line: LogLine) =>
  ['warn', 'error'].includes(line.level) && /certificate|TLS/i.test(line.msg);

async function writePair(dir: string, leaf: LeafCertificate): Promise<void> {
  await writeFile(join(dir, 'tls.crt'), leaf.chainPem);
  await writeFile(join(dir, 'tls.key'), leaf.keyPem);
}

describe('TLS certificates', () => {
  const pki = useTestCertificates();
  const ca = () => pki.certs.ca.pem;

  describe('configuration at start-up', () => {
    it.each<[string, (certs: TestCertificates) => Record<string, string>, RegExp]>([
      ['TLS_CERT_FILE alone', (c) => ({ TLS_CERT_FILE: c.leaf.chainFile }), /TLS_KEY_FILE/],
      ['TLS_KEY_FILE alone', (c) => ({ TLS_KEY_FILE: c.leaf.keyFile }), /TLS_CERT_FILE/],
      [
        'a TLS_CERT_FILE that cannot be read',
        (c) => ({ TLS_CERT_FILE: join(c.dir, 'missing.pem'), TLS_KEY_FILE: c.leaf.keyFile }),
        /TLS_CERT_FILE/,
      ],
      [
        'a TLS_KEY_FILE that cannot be read',
        (c) => ({ TLS_CERT_FILE: c.leaf.chainFile, TLS_KEY_FILE: join(c.dir, 'missing.key') }),
        /TLS_KEY_FILE/,
      ],
      [
        'a TLS_CERT_FILE that holds no certificate',
        (c) => ({ TLS_CERT_FILE: join(c.dir, 'openssl.cnf'), TLS_KEY_FILE: c.leaf.keyFile }),
        /TLS_CERT_FILE/,
      ],
      [
        'a key that does not match the certificate',
        (c) => ({ TLS_CERT_FILE: c.leaf.chainFile, TLS_KEY_FILE: c.strayKey.keyFile }),
        /TLS_(KEY|CERT)_FILE/,
      ],
    ])('exits 1 before listening on %s, naming the variable', async (_, env, named) => {
      const { code, output } = await runGatewayToExit(env(pki.certs), 5000);
      expect(code).toBe(1);
      expect(output).toMatch(named);
      expect(output).not.toMatch(/listening on/);
    });

    it('exits 1 on an HTTP2_MAX_CONCURRENT_STREAMS that is not a number', async () => {
      const { code, output } = await runGatewayToExit(
        { HTTP2_MAX_CONCURRENT_STREAMS: 'many' },
        5000,
      );
      expect(code).toBe(1);
      expect(output).toMatch(/^Invalid configuration: HTTP2_MAX_CONCURRENT_STREAMS="many" /);
    });
  });

  describe('reloading', () => {
    const auth = useStub('auth');
    const gateways: GatewayProcess[] = [];
    afterEach(async () => {
      await Promise.all(gateways.splice(0).map((g) => g.stop()));
    });

    async function gatewayOn(dir: string): Promise<GatewayProcess> {
      const gateway = await startGateway(
        {
          AUTH_SERVICE_URL: auth.stub.url,
          TLS_CERT_FILE: join(dir, 'tls.crt'),
          TLS_KEY_FILE: join(dir, 'tls.key'),
        },
        { tls: { ca: ca() } },
      );
      gateways.push(gateway);
      return gateway;
    }

    /**
     * Starts a gateway on `dir`, runs `change` with an HTTP/2 session open, and checks that new
     * handshakes get the second certificate within `withinMs` while the open session keeps the
     * first and is still served.
     */
    async function expectReload(
      root: string,
      dir: string,
      change: (gateway: GatewayProcess) => Promise<void>,
      withinMs: number,
    ): Promise<void> {
      const { leaf, second } = pki.certs;
      const gateway = await gatewayOn(dir);
      expect(await servedFingerprint(gateway.port, ca())).toBe(leaf.fingerprint256);
      const session = await openSession(gateway.url, ca());
      try {
        await change(gateway);
        expect(await fingerprintBecomes(gateway.port, ca(), second.fingerprint256, withinMs)).toBe(
          second.fingerprint256,
        );
        expect((session.socket as TLSSocket).getPeerCertificate().fingerprint256).toBe(
          leaf.fingerprint256,
        );
        const res = await h2Request(session, '/api/auth/after-reload');
        expect(res.status).toBe(200);
        expect(res.json()).toMatchObject({ url: '/api/auth/after-reload' });
      } finally {
        await closeSession(session);
        await rm(root, { recursive: true, force: true });
      }
    }

    it('loads a new certificate for new handshakes on SIGHUP; an open connection keeps its own', async () => {
      // TLS_CERT_FILE sits under a symlinked folder that is swapped: a watch on the files or on
      // their folder sees nothing, so only the signal can load the new pair.
      const root = await mkdtemp(join(pki.certs.dir, 'sighup-'));
      await mkdir(join(root, 'v1'));
      await mkdir(join(root, 'v2'));
      await writePair(join(root, 'v1'), pki.certs.leaf);
      await writePair(join(root, 'v2'), pki.certs.second);
      await symlink('v1', join(root, 'live'));
      await expectReload(
        root,
        join(root, 'live'),
        async (gateway) => {
          await symlink('v2', join(root, 'live.next'));
          await rename(join(root, 'live.next'), join(root, 'live'));
          gateway.child.kill('SIGHUP');
        },
        2000,
      );
    });

    it('loads a new certificate when the files are replaced by rename (an editor, a config tool)', async () => {
      const dir = await mkdtemp(join(pki.certs.dir, 'rename-'));
      await writePair(dir, pki.certs.leaf);
      await expectReload(
        dir,
        dir,
        async () => {
          await writeFileAtomically(join(dir, 'tls.crt'), pki.certs.second.chainPem);
          await writeFileAtomically(join(dir, 'tls.key'), pki.certs.second.keyPem);
        },
        10_000,
      );
    });

    it('loads a new certificate when Kubernetes swaps the ..data symlink of a mounted Secret', async () => {
      // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/.
      const dir = await mkdtemp(join(pki.certs.dir, 'secret-'));
      await mkdir(join(dir, '..2026_12_02_01_00_00.1'));
      await writePair(join(dir, '..2026_12_02_01_00_00.1'), pki.certs.leaf);
      await symlink('..2026_12_02_01_00_00.1', join(dir, '..data'));
      await symlink('..data/tls.crt', join(dir, 'tls.crt'));
      await symlink('..data/tls.key', join(dir, 'tls.key'));
      await expectReload(
        dir,
        dir,
        async () => {
          await mkdir(join(dir, '..2026_12_02_01_05_00.2'));
          await writePair(join(dir, '..2026_12_02_01_05_00.2'), pki.certs.second);
          await symlink('..2026_12_02_01_05_00.2', join(dir, '..data_tmp'));
          await rename(join(dir, '..data_tmp'), join(dir, '..data'));
          await rm(join(dir, '..2026_12_02_01_00_00.1'), { recursive: true });
        },
        10_000,
      );
    });

    it('refuses a new pair whose key does not match, with a log line, and keeps serving the old certificate', async () => {
      const { leaf, second, strayKey } = pki.certs;
      const dir = await mkdtemp(join(pki.certs.dir, 'mismatch-'));
      try {
        await writePair(dir, leaf);
        const gateway = await gatewayOn(dir);

        let mark = gateway.output().length;
        await writeFileAtomically(join(dir, 'tls.crt'), second.chainPem);
        await writeFileAtomically(join(dir, 'tls.key'), strayKey.pem);
        expect(await logLineAfter(gateway, mark, refusedReload, 10_000)).toBeDefined();
        mark = gateway.output().length;
        gateway.child.kill('SIGHUP');
        expect(await logLineAfter(gateway, mark, refusedReload, 5000)).toBeDefined();

        expect(await servedFingerprint(gateway.port, ca())).toBe(leaf.fingerprint256);
        const res = await httpRequest(`${gateway.url}/api/auth/old-certificate`, { ca: ca() });
        expect(res.status).toBe(200);
        expect(gateway.child.exitCode).toBeNull();

        // The refusal did not stop the reloading: the matching key completes the pair.
        await writeFileAtomically(join(dir, 'tls.key'), second.keyPem);
        expect(await fingerprintBecomes(gateway.port, ca(), second.fingerprint256, 10_000)).toBe(
          second.fingerprint256,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
