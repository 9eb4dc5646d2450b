import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { Logger } from '@nestjs/common';
import { ConfigError } from '@helix/gateway-config';
import { readTlsPair, secureContextOptions, type TlsPair } from './tls-certificate';

/** A change settles first: a Secret's update writes a new folder, then swaps `..data`. */
const SETTLE_MS = 100;

/**
 * Loads a new certificate for new handshakes, on SIGHUP and whenever TLS_CERT_FILE or
 * TLS_KEY_FILE changes; connections already open keep the one they began with. The folders
 * are watched, not the files: a mounted Kubernetes Secret changes by swapping its `..data`
 * symlink, which a watch on the file itself never sees. A pair that does not load is refused
 * with a log line, and the one in use stays.
 */
export class CertificateReloader {
  private readonly logger = new Logger('TLS');
  private readonly watchers: FSWatcher[] = [];
  private settle: NodeJS.Timeout | undefined;
  private readonly onSignal = () => this.reload('SIGHUP');

  constructor(
    private readonly server: TlsServer,
    private readonly certFile: string,
    private readonly keyFile: string,
    private current: TlsPair,
  ) {}

  start(): void {
    process.on('SIGHUP', this.onSignal);
    for (const folder of new Set([dirname(this.certFile), dirname(this.keyFile)])) {
      try {
        const watcher = watch(folder, () => this.schedule());
        watcher.on('error', (err) => this.logger.warn(`stopped watching ${folder}: ${err.message}`));
        watcher.unref();
        this.watchers.push(watcher);
      } catch (err) {
        this.logger.warn(
          `cannot watch ${folder} (${(err as NodeJS.ErrnoException).code}); SIGHUP still reloads the certificate`,
        );
      }
    }
  }

  stop(): void {
    process.off('SIGHUP', this.onSignal);
    clearTimeout(this.settle);
    for (const watcher of this.watchers) watcher.close();
  }

  /** Reads the pair again; true when new handshakes now get a new certificate. */
  reload(reason: string): boolean {
    let pair: TlsPair;
    try {
      pair = readTlsPair(this.certFile, this.keyFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.logger.error(`${reason}: certificate reload refused, the current one stays: ${err.message}`);
      return false;
    }
    if (pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) {
      if (reason === 'SIGHUP') this.logger.log('SIGHUP: the certificate files are unchanged');
      return false;
    }
    this.server.setSecureContext(secureContextOptions(pair));
    this.current = pair;
    this.logger.log(
      `${reason}: certificate reloaded for new connections (sha256 ${pair.fingerprint})`,
    );
    return true;
  }

  private schedule(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reload('certificate files changed'), SETTLE_MS);
    this.settle.unref();
  }
}
