import { Resolver } from 'node:dns/promises';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { GatewayMetrics } from '@helix/gateway-observability';
import type { UpstreamService } from '@helix/gateway-upstream';
import { UpstreamRegistry } from './upstream-registry';

/** A lookup that takes longer than this is a failed one (per try; two tries). */
const LOOKUP_TIMEOUT_MS = 1000;
/** A record's TTL may bring the next lookup forward, never below this. */
const MIN_REFRESH_MS = 1000;
/** At start-up the first answers are waited for this long at most, then the names serve. */
const FIRST_ROUND_LIMIT_MS = 3000;

interface Answer {
  readonly addresses: string[];
  /** The smallest TTL in the answer, in ms, or undefined when there were no records. */
  readonly ttlMs: number | undefined;
  /** Why the lookup failed, or undefined when both families answered (even with nothing). */
  readonly error: string | undefined;
}

/**
 * DNS discovery (Envoy's STRICT_DNS, nginx's `resolve`, HAProxy's server-template): every
 * address that a `discovery: dns` target's name resolves to, A and AAAA, is an instance of its
 * own, and the set is kept current in the background, never on a request's path. Lookups go
 * through dns.promises.Resolver, which queries the servers itself, not `lookup`, which would
 * hold a libuv thread each; DNS_SERVERS replaces the system's. A lookup that fails, or finds
 * no address, keeps the last set: logged once until it recovers, counted every time.
 */
@Injectable()
export class DnsDiscovery implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DnsDiscovery.name);
  private readonly resolver = new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: 2 });
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running = false;
  /** A refresh was asked for while a round ran: another follows it at once. */
  private again = false;
  /** The targets whose lookups fail now, logged once each. */
  private readonly failing = new Set<string>();
  private readonly capped = new Set<string>();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly metrics: GatewayMetrics,
  ) {
    if (config.DNS_SERVERS) this.resolver.setServers(config.DNS_SERVERS);
  }

  async onApplicationBootstrap(): Promise<void> {
    let first: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      first = setTimeout(resolve, FIRST_ROUND_LIMIT_MS);
    });
    await Promise.race([this.round(), limit]);
    clearTimeout(first);
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.resolver.cancel();
  }

  /** Looks every discovered target up now: a new route table's services have no addresses yet. */
  refreshNow(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    void this.round();
  }

  /** One lookup of every discovered target of the table in force, then the next in due time. */
  private async round(): Promise<void> {
    this.running = true;
    const services = this.registry.all().filter((service) => service.discovered.length > 0);
    const ttls = await Promise.all(
      services.flatMap((service) =>
        service.discovered.map((target) => this.refresh(service, target)),
      ),
    );
    this.running = false;
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      void this.round();
      return;
    }
    const shortest = Math.min(...ttls.filter((ttl) => ttl !== undefined));
    const next = Math.min(this.config.DNS_REFRESH_MS, Math.max(MIN_REFRESH_MS, shortest));
    this.timer = setTimeout(() => void this.round(), next);
    this.timer.unref();
  }

  /** Looks a target up and applies the answer; returns its TTL in ms. */
  private async refresh(service: UpstreamService, target: URL): Promise<number | undefined> {
    const key = `${service.name} ${target.host}`;
    const answer = await this.lookUp(target.hostname);
    if (answer.error !== undefined || answer.addresses.length === 0) {
      this.metrics.dnsLookupFailures.labels(service.name).inc();
      if (!this.failing.has(key)) {
        this.failing.add(key);
        this.logger.warn(
          `${service.name}: ${target.hostname} ${answer.error ?? 'resolved to no address'}; the last ${service.instances.length} instance(s) stay`,
        );
      }
      return answer.ttlMs;
    }
    if (this.failing.delete(key))
      this.logger.log(`${service.name}: ${target.hostname} resolves again`);
    let addresses = answer.addresses.sort();
    const max = this.config.DNS_MAX_ADDRESSES;
    if (addresses.length > max) {
      if (!this.capped.has(key)) {
        this.capped.add(key);
        this.logger.warn(
          `${service.name}: ${target.hostname} has ${addresses.length} addresses; using ${max} (DNS_MAX_ADDRESSES)`,
        );
      }
      addresses = addresses.slice(0, max);
    }
    const { added, removed } = service.useAddresses(target, addresses);
    if (added > 0 || removed > 0) {
      this.logger.log(
        `${service.name}: ${target.hostname} now has ${addresses.length} instance(s) (${added} added, ${removed} removed)`,
      );
      this.metrics.upstreamAddresses.reset();
      for (const known of this.registry.all()) {
        for (const instance of known.instances) {
          this.metrics.upstreamAddresses
            .labels(known.name, String(instance.index), instance.url.host)
            .set(1);
        }
      }
    }
    return answer.ttlMs;
  }

  private async lookUp(hostname: string): Promise<Answer> {
    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(hostname, { ttl: true }),
      this.resolver.resolve6(hostname, { ttl: true }),
    ]);
    const records = [v4, v6].flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    // The answer of either family is an answer: some resolvers refuse AAAA outright. Only when
    // neither answered, with a failure other than "no such name" or "no record", did the
    // lookup fail.
    const failures = [v4, v6].filter((r) => r.status === 'rejected');
    const failure = failures.find(
      (r) => !NO_RECORDS.has((r.reason as NodeJS.ErrnoException).code ?? ''),
    );
    return {
      addresses: records.map((record) => record.address),
      ttlMs: records.length > 0 ? Math.min(...records.map((r) => r.ttl)) * 1000 : undefined,
      error:
        records.length > 0 || failures.length < 2 || failure === undefined
          ? undefined
          : `could not be resolved (${(failure.reason as NodeJS.ErrnoException).code ?? 'error'})`,
    };
  }
}

const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);
