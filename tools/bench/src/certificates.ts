import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCommand } from './processes.ts';

/** PEM files made for one run: the CA that clients trust, and the servers' leaf and key. */
export interface BenchCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * Extensions spelled out in a config of our own, so what the certificates hold does not depend
 * on the distribution's openssl.cnf (Debian's adds its v3_ca section to every `req -x509`). The
 * leaf names the address the clients dial in an iPAddress subjectAltName, which a client must
 * match for an IP in the URI (RFC 2818 §3.1); the CN is not looked at.
 */
const OPENSSL_CONFIG = `[req]
distinguished_name = subject
[subject]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
`;

/** P-256 keys: with keep-alive connections the handshakes are few, and ECDSA signs them fast. */
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync(findCommand('openssl', 'openssl'), args, { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    const { stderr } = err as { stderr?: Buffer };
    throw new Error(
      `openssl ${args[0]} failed: ${stderr?.toString().trim() ?? (err as Error).message}`,
    );
  }
}

/** A CA and a leaf for IP:127.0.0.1 signed by it, valid for a day, made with the openssl CLI. */
export function makeCertificates(dir: string): BenchCertificates {
  writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
  const config = ['-config', 'openssl.cnf'];
  openssl(dir, [
    'req',
    '-x509',
    ...config,
    '-extensions',
    'ca',
    ...KEY,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=Helix bench CA',
  ]);
  openssl(dir, [
    'req',
    '-new',
    ...config,
    ...KEY,
    '-keyout',
    'key.pem',
    '-out',
    'leaf.csr',
    '-subj',
    '/CN=127.0.0.1',
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-set_serial',
    '1',
    '-days',
    '1',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    'leaf',
    '-out',
    'cert.pem',
  ]);
  return {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'cert.pem'),
    keyFile: join(dir, 'key.pem'),
  };
}
