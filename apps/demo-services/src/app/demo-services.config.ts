export interface DemoService {
  name: string;
  /** 0 asks the OS for a free port. */
  port: number;
}

export interface DemoConfig {
  host: string;
  services: DemoService[];
}

export const DEFAULT_DEMO_HOST = '127.0.0.1';

/** The upstreams behind the gateway's default route table, on their default ports. */
export const DEFAULT_DEMO_SERVICES: readonly DemoService[] = [
  { name: 'auth', port: 3001 },
  { name: 'tenant', port: 3002 },
  { name: 'admin', port: 3003 },
  { name: 'file', port: 3004 },
  { name: 'kira', port: 3010 },
  { name: 'vera', port: 3011 },
  { name: 'cleverscreen', port: 3012 },
];

/** A demo setting that cannot start; the message names the variable and the rule. */
export class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
}

const ENTRY = /^([a-z][a-z0-9-]*)(?:=(\d{1,5}))?$/;

function parseEntry(entry: string): DemoService {
  const match = ENTRY.exec(entry);
  const known = DEFAULT_DEMO_SERVICES.find((service) => service.name === match?.[1]);
  const port = match?.[2] === undefined ? known?.port : Number(match[2]);
  if (!match || port === undefined || port > 65_535) {
    throw new DemoConfigError(
      `Invalid DEMO_SERVICES entry "${entry}": expected name=port with a port from 0 to 65535 ` +
        `(the port may be left out for ${DEFAULT_DEMO_SERVICES.map((s) => s.name).join(', ')})`,
    );
  }
  return { name: match[1], port };
}

/**
 * Reads `DEMO_HOST` and `DEMO_SERVICES` (a comma list of `name=port`, e.g. `auth=0,kira`);
 * without `DEMO_SERVICES` every default service starts on its default port.
 */
export function readDemoConfig(env: Record<string, string | undefined>): DemoConfig {
  const host = env['DEMO_HOST']?.trim() || DEFAULT_DEMO_HOST;
  const list = env['DEMO_SERVICES']?.trim();
  if (!list) return { host, services: [...DEFAULT_DEMO_SERVICES] };
  const services = list.split(',').map((entry) => parseEntry(entry.trim()));
  const names = services.map((service) => service.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) {
    throw new DemoConfigError(`Invalid DEMO_SERVICES: service "${repeated}" is listed twice`);
  }
  return { host, services };
}
