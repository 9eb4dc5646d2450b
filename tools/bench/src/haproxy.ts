import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  findCommand,
  type ProcessGroup,
  reserveFreePort,
  type ServiceProcess,
} from './processes.ts';

/**
 * HAProxy as a reference proxy in cleartext: one thread, as the gateway is one process, and
 * keep-alive connections to the upstream that any client's request may reuse. No `log` line, so
 * it logs nothing; its own warnings and errors go to stderr, which the process group keeps.
 */
function haproxyConfig(listenPort: number, upstreamPort: number): string {
  return `global
  nbthread 1

defaults
  mode http
  # HAProxy warns without these; none is reached by the benchmark's loads.
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend bench
  bind 127.0.0.1:${listenPort}
  default_backend demo

backend demo
  # Keep-alive on both sides is HAProxy's default mode (option http-keep-alive). "always": an
  # idle upstream connection serves the next request of any client, as the gateway's pool does;
  # the default, "safe", sends the first request of each client connection on one of its own.
  http-reuse always
  server demo 127.0.0.1:${upstreamPort}
`;
}

/** HAProxy's version, for the results: the reference moves with it. */
export function haproxyVersion(): string {
  const out = execFileSync(findCommand('haproxy', 'haproxy'), ['-v'], { encoding: 'utf8' });
  return out.split('\n')[0].replace(/^HAProxy version (\S+).*$/, 'HAProxy $1');
}

/**
 * Writes the config into `dir`, tests it, and starts HAProxy in the foreground in `group`: one
 * process (`-db`, no master-worker mode), the one the group spawned.
 */
export async function startHaproxy(
  group: ProcessGroup,
  dir: string,
  upstreamUrl: string,
): Promise<{ service: ServiceProcess; url: string }> {
  const haproxy = findCommand('haproxy', 'haproxy');
  const port = await reserveFreePort();
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(port, Number(new URL(upstreamUrl).port)));
  try {
    execFileSync(haproxy, ['-c', '-q', '-f', conf], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `haproxy -c rejected ${conf}: ${(err as { stderr?: Buffer }).stderr?.toString().trim()}`,
    );
  }
  const service = group.spawnCommand('haproxy', haproxy, ['-db', '-f', conf], {}, dir);
  return { service, url: `http://127.0.0.1:${port}` };
}
