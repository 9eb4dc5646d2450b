import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { ConfigError } from '@helix/gateway-config';

/** TLS 1.2 and up, as Mozilla's "intermediate" profile; Node's defaults choose the ciphers. */
export const TLS_MIN_VERSION = 'TLSv1.2';

/** A certificate chain and its key, as read from TLS_CERT_FILE and TLS_KEY_FILE. */
export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, for the logs. */
  readonly fingerprint: string;
}

function read(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: ${variable}=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * Reads and checks the pair: each file must parse, and the key must be the certificate's.
 * A ConfigError names the variable at fault, at start-up as on a reload.
 */
export function readTlsPair(certFile: string, keyFile: string): TlsPair {
  const cert = read('TLS_CERT_FILE', certFile);
  const key = read('TLS_KEY_FILE', keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: TLS_CERT_FILE=${certFile} holds no PEM certificate (${(err as Error).message})`,
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: TLS_KEY_FILE=${keyFile} holds no PEM private key (${(err as Error).message})`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      `Invalid configuration: TLS_KEY_FILE=${keyFile} is not the key of the certificate in TLS_CERT_FILE=${certFile}`,
    );
  }
  return { cert, key, fingerprint: leaf.fingerprint256 };
}

/** What a secure context is made of, at start-up and on every reload alike. */
export function secureContextOptions(pair: TlsPair): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: TLS_MIN_VERSION };
}
