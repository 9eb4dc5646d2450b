import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@helix/gateway-config';
import { readTlsPair } from './tls-certificate';

/** A self-signed certificate and its key, made by openssl, plus a key of another pair. */
function makePair(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('readTlsPair', () => {
  let dir: string;
  let first: { cert: string; key: string };
  let second: { cert: string; key: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'helix-tls-'));
    first = makePair(dir, 'first');
    second = makePair(dir, 'second');
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a matching pair with the fingerprint openssl gives', () => {
    const pair = readTlsPair(first.cert, first.key);
    const openssl = execFileSync('openssl', [
      'x509',
      '-in',
      first.cert,
      '-noout',
      '-fingerprint',
      '-sha256',
    ])
      .toString()
      .trim();
    expect(openssl).toBe(`sha256 Fingerprint=${pair.fingerprint}`);
  });

  it('names TLS_KEY_FILE when the key is not the certificate’s', () => {
    expect(messageOf(() => readTlsPair(first.cert, second.key))).toBe(
      `Invalid configuration: TLS_KEY_FILE=${second.key} is not the key of the certificate in TLS_CERT_FILE=${first.cert}`,
    );
  });

  it('names the variable of a file that cannot be read', () => {
    const missing = join(dir, 'missing.crt');
    expect(messageOf(() => readTlsPair(missing, first.key))).toBe(
      `Invalid configuration: TLS_CERT_FILE=${missing} cannot be read (ENOENT)`,
    );
    expect(messageOf(() => readTlsPair(first.cert, missing))).toBe(
      `Invalid configuration: TLS_KEY_FILE=${missing} cannot be read (ENOENT)`,
    );
  });

  it('names the variable of a file that holds no PEM of its kind', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    expect(messageOf(() => readTlsPair(junk, first.key))).toMatch(
      /^Invalid configuration: TLS_CERT_FILE=.*junk\.pem holds no PEM certificate/,
    );
    expect(messageOf(() => readTlsPair(first.cert, first.cert))).toMatch(
      /^Invalid configuration: TLS_KEY_FILE=.*first\.crt holds no PEM private key/,
    );
  });
});
