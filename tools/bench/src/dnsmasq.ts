import { Resolver } from 'node:dns/promises';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  failure,
  findCommand,
  type ProcessGroup,
  reserveFreePort,
  type ServiceProcess,
} from './processes.ts';

/** Under `.test` (RFC 6761 §6.2): a name no real resolver answers, so only dnsmasq can. */
export const BENCH_HOST = 'upstream.bench.test';
const START_TIMEOUT_MS = 5000;
const POLL_INTERVAL_MS = 25;

/** dnsmasq's version, for the results. */
export function dnsmasqVersion(): string {
  const out = execFileSync(findCommand('dnsmasq', 'dnsmasq-base'), ['--version']).toString();
  return out.split('\n')[0].replace(/^Dnsmasq version (\S+).*$/, 'dnsmasq $1');
}

/**
 * dnsmasq on a loopback port answering `BENCH_HOST` → 127.0.0.1 from a hosts file in `dir`, and
 * nothing else: no upstream resolvers, no /etc/hosts. A TTL of 1 s and no cache, so every
 * lookup the gateway makes is a real query and answer. Resolves with `127.0.0.1:PORT` once a
 * lookup through `dns.promises.Resolver`, the gateway's own client, finds the address.
 */
export async function startDnsmasq(
  group: ProcessGroup,
  dir: string,
): Promise<{ service: ServiceProcess; server: string }> {
  const dnsmasq = findCommand('dnsmasq', 'dnsmasq-base');
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, `127.0.0.1 ${BENCH_HOST}\n`);
  const port = await reserveFreePort();
  const service = group.spawnCommand(
    'dnsmasq',
    dnsmasq,
    [
      '--keep-in-foreground',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hosts}`,
      '--local=/test/',
      '--local-ttl=1',
      '--cache-size=0',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      // Started as root, dnsmasq changes to user nobody, which a container may not have.
      '--user=root',
      '--log-facility=-',
    ],
    {},
    dir,
  );
  const server = `127.0.0.1:${port}`;
  await waitForAnswer(service, server);
  return { service, server };
}

async function waitForAnswer(service: ServiceProcess, server: string): Promise<void> {
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([server]);
  const deadline = performance.now() + START_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const addresses = await resolver.resolve4(BENCH_HOST);
      if (addresses.length === 1 && addresses[0] === '127.0.0.1') return;
      last = `answered ${addresses.join(', ')}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (service.child.exitCode !== null)
      throw failure(service, `exited with ${service.child.exitCode}`);
    if (performance.now() > deadline)
      throw failure(
        service,
        `gave no 127.0.0.1 for ${BENCH_HOST} within ${START_TIMEOUT_MS} ms (${last})`,
      );
    await sleep(POLL_INTERVAL_MS);
  }
}
