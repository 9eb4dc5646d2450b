import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';

export const OPENSSL = '/usr/bin/openssl';

const run = promisify(execFile);

/** A server certificate for 127.0.0.1 and localhost, with its key. */
export interface LeafCertificate {
  /** The leaf then the intermediate CA, as a server presents its chain. */
  readonly chainFile: string;
  readonly keyFile: string;
  readonly chainPem: string;
  readonly keyPem: string;
  /** As `TLSSocket#getPeerCertificate().fingerprint256` gives it: `AB:CD:…`. */
  readonly fingerprint256: string;
  /** base64 sha256 of the DER SubjectPublicKeyInfo, as Chromium's `--ignore-certificate-errors-spki-list` takes it. */
  readonly spkiSha256: string;
}

/** A throwaway PKI made with the openssl CLI in its own temp dir: nothing is checked in. */
export interface TestCertificates {
  readonly dir: string;
  /** The root CA, the only certificate clients trust. */
  readonly ca: { readonly certFile: string; readonly pem: string };
  /** The certificate the gateway starts with. */
  readonly leaf: LeafCertificate;
  /** Another one from the same CA, for reloads. */
  readonly second: LeafCertificate;
  /** A key that belongs to neither leaf. */
  readonly strayKey: { readonly keyFile: string; readonly pem: string };
}

// A root, an intermediate and server leaves, as a real deployment has them: a gateway that
// sent only the first certificate of TLS_CERT_FILE would fail verification.
const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** The environment that makes the gateway serve `leaf`. */
export function tlsEnv(leaf: { chainFile: string; keyFile: string }): Record<string, string> {
  return { TLS_CERT_FILE: leaf.chainFile, TLS_KEY_FILE: leaf.keyFile };
}

function fingerprintsOf(pem: string): { fingerprint256: string; spkiSha256: string } {
  const cert = new X509Certificate(pem);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return {
    fingerprint256: cert.fingerprint256,
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
  };
}

/** Makes the root, the intermediate, two leaves and a stray key in a new temp dir. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'helix-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run(OPENSSL, args, { cwd: dir });
  await writeFile(file('openssl.cnf'), OPENSSL_CONFIG);
  const config = ['-config', file('openssl.cnf')];

  await openssl(
    'req',
    '-x509',
    ...config,
    '-extensions',
    'ca_ext',
    ...EC_KEY,
    '-keyout',
    file('root.key'),
    '-out',
    file('root.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Helix e2e root CA',
  );
  const sign = async (name: string, subject: string, extensions: string, serial: string) => {
    await openssl(
      'req',
      '-new',
      ...config,
      ...EC_KEY,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      subject,
    );
    const issuer = name === 'intermediate' ? 'root' : 'intermediate';
    await openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${issuer}.pem`),
      '-CAkey',
      file(`${issuer}.key`),
      '-set_serial',
      serial,
      '-days',
      '2',
      '-extfile',
      file('openssl.cnf'),
      '-extensions',
      extensions,
      '-out',
      file(`${name}.pem`),
    );
  };
  await sign('intermediate', '/CN=Helix e2e intermediate CA', 'ca_ext', '1001');
  const intermediatePem = await readFile(file('intermediate.pem'), 'utf8');
  const leaf = async (name: string, serial: string): Promise<LeafCertificate> => {
    await sign(name, '/CN=127.0.0.1', 'leaf_ext', serial);
    const certPem = await readFile(file(`${name}.pem`), 'utf8');
    const chainPem = certPem + intermediatePem;
    await writeFile(file(`${name}.chain.pem`), chainPem);
    return {
      chainFile: file(`${name}.chain.pem`),
      keyFile: file(`${name}.key`),
      chainPem,
      keyPem: await readFile(file(`${name}.key`), 'utf8'),
      ...fingerprintsOf(certPem),
    };
  };
  const first = await leaf('leaf', '2001');
  const second = await leaf('second', '2002');
  await openssl(
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    file('stray.key'),
  );
  return {
    dir,
    ca: { certFile: file('root.pem'), pem: await readFile(file('root.pem'), 'utf8') },
    leaf: first,
    second,
    strayKey: { keyFile: file('stray.key'), pem: await readFile(file('stray.key'), 'utf8') },
  };
}

/** Test certificates made before the suite's tests and deleted after them. */
export function useTestCertificates(): { readonly certs: TestCertificates } {
  const fixture = {} as { certs: TestCertificates };
  beforeAll(async () => {
    fixture.certs = await createTestCertificates();
  });
  afterAll(async () => {
    if (fixture.certs) await rm(fixture.certs.dir, { recursive: true, force: true });
  });
  return fixture;
}

/** Replaces `path` the way config tools do: the new content under a temp name, renamed over. */
export async function writeFileAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temp, content);
  await rename(temp, path);
}

/** Completes a TLS handshake with 127.0.0.1:`port`, trusting only `ca`. */
export function handshake(
  port: number,
  ca: string,
  options: ConnectionOptions = {},
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...options });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** The sha256 fingerprint of the certificate a new handshake with 127.0.0.1:`port` presents. */
export async function servedFingerprint(port: number, ca: string): Promise<string> {
  const socket = await handshake(port, ca, { ALPNProtocols: ['http/1.1'] });
  const { fingerprint256 } = socket.getPeerCertificate();
  socket.destroy();
  return fingerprint256;
}
