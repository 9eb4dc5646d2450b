import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCertificates } from './certificates.ts';
import {
  findCommand,
  type ProcessGroup,
  reserveFreePort,
  type ServiceProcess,
} from './processes.ts';

/** HTTP/2 and HTTP/1.1 by ALPN on one port, with the gateway's certificate. */
function tlsListen(port: number, certificates: BenchCertificates): string {
  return `    # HTTP/2 as a listen parameter: nginx 1.22 (Debian 12) predates "http2 on;" (1.25.1).
    listen 127.0.0.1:${port} ssl http2;
    # The gateway's range, TLS 1.2 and up: nginx before 1.23.4 (Debian 12 has 1.22) leaves TLS 1.3
    # out by default, and the two would not do the same handshake and record work.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${certificates.certFile};
    ssl_certificate_key ${certificates.keyFile};`;
}

/**
 * nginx as a reference proxy: one worker, as the gateway is one process, and keep-alive
 * connections to the upstream; over TLS with `certificates`, in cleartext HTTP/1.1 without.
 * Every path of it (pid, temp files) is inside `dir`; the error log goes to stderr, which the
 * process group keeps; no access log.
 */
function nginxConfig(
  dir: string,
  listenPort: number,
  upstreamPort: number,
  certificates: BenchCertificates | undefined,
): string {
  const listen = certificates
    ? tlsListen(listenPort, certificates)
    : `    listen 127.0.0.1:${listenPort};`;
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  # nginx closes a client connection after 1,000 requests by default (GOAWAY on HTTP/2); h2load
  # counts the requests it had in flight there as failed: a harness artefact, not a lost request.
  # autocannon would reconnect instead, a cost the Node proxies, whose servers set no such limit,
  # do not pay.
  keepalive_requests 10000000;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream demo {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
${listen}
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** nginx's version, for the results: the reference moves with it. */
export function nginxVersion(): string {
  // `nginx -v` prints on stderr.
  const { stderr } = spawnSync(findCommand('nginx', 'nginx'), ['-v'], { encoding: 'utf8' });
  return stderr.trim().replace(/^nginx version: /, '');
}

/**
 * Writes the config into `dir`, tests it, and starts nginx in the foreground in `group`: over TLS
 * with `certificates`, in cleartext without. The master stays the spawned process; its one
 * worker is a child of it.
 */
export async function startNginx(
  group: ProcessGroup,
  dir: string,
  upstreamUrl: string,
  certificates?: BenchCertificates,
): Promise<{ service: ServiceProcess; url: string }> {
  const nginx = findCommand('nginx', 'nginx');
  const port = await reserveFreePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, Number(new URL(upstreamUrl).port), certificates));
  // `-e stderr`: nginx opens its compiled-in error log before it reads the config's error_log.
  const args = ['-p', dir, '-c', conf, '-e', 'stderr'];
  try {
    execFileSync(nginx, [...args, '-t', '-q'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `nginx -t rejected ${conf}: ${(err as { stderr?: Buffer }).stderr?.toString().trim()}`,
    );
  }
  const service = group.spawnCommand('nginx', nginx, [...args, '-g', 'daemon off;'], {}, dir);
  return { service, url: `${certificates ? 'https' : 'http'}://127.0.0.1:${port}` };
}
