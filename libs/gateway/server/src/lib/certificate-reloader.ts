import type { Server as TlsServer } from 'node:tls';
import { Logger } from '@nestjs/common';
import { ConfigError } from '@helix/gateway-config';
import { FolderWatch, hashFile } from './folder-watch';
import { readTlsPair, secureContextOptions, type TlsPair } from './tls-certificate';

/** The safety-net poll of the certificate files. */
const POLL_MS = 30_000;

/**
 * Loads a new certificate for new handshakes, on SIGHUP and whenever TLS_CERT_FILE or
 * TLS_KEY_FILE changes (FolderWatch); connections already open keep the one they began with.
 * A pair that does not load is refused with a log line, and the one in use stays.
 */
export class CertificateReloader {
  private readonly logger = new Logger('TLS');
  private readonly watch: FolderWatch;
  /** The files' contents last looked at, loaded or refused: a watch event or a poll that finds
   * them the same does nothing, so a refused pair is logged once, not on every poll. */
  private seen: string;
  private readonly onSignal = () => this.reload('SIGHUP');

  constructor(
    private readonly server: TlsServer,
    private readonly certFile: string,
    private readonly keyFile: string,
    private current: TlsPair,
  ) {
    this.seen = this.contents();
    this.watch = new FolderWatch(
      [certFile, keyFile],
      () => this.reload('certificate files changed'),
      POLL_MS,
    );
  }

  start(): void {
    process.on('SIGHUP', this.onSignal);
    this.watch.start();
  }

  stop(): void {
    process.off('SIGHUP', this.onSignal);
    this.watch.stop();
  }

  /** Reads the pair again; true when new handshakes now get a new certificate. */
  reload(reason: string): boolean {
    const seen = this.contents();
    if (reason !== 'SIGHUP' && seen === this.seen) return false;
    this.seen = seen;
    let pair: TlsPair;
    try {
      pair = readTlsPair(this.certFile, this.keyFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.logger.error(
        `${reason}: certificate reload refused, the current one stays: ${err.message}`,
      );
      return false;
    }
    if (pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) {
      // A SIGHUP with nothing new, or files changed back to the pair in use.
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

  private contents(): string {
    return `${hashFile(this.certFile)}:${hashFile(this.keyFile)}`;
  }
}
