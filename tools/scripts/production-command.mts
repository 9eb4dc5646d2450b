import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const GATEWAY_SCRIPT = 'dist/apps/api-gateway/main.js';

/**
 * The Node flags the gateway image starts with: the exec-form `CMD ["node", ...flags,
 * "dist/apps/api-gateway/main.js"]` of the Dockerfile at `root`. The benchmark, the soak and the
 * rolling check start the gateway with them, so they measure the process production runs.
 */
export function gatewayNodeFlags(root: string): string[] {
  const dockerfile = readFileSync(resolve(root, 'Dockerfile'), 'utf8');
  for (const [, json] of dockerfile.matchAll(/^CMD (\[.*\])\s*$/gm)) {
    const command = JSON.parse(json) as string[];
    if (command[0] === 'node' && command.at(-1) === GATEWAY_SCRIPT) return command.slice(1, -1);
  }
  throw new Error(`${root}/Dockerfile has no CMD ["node", ..., "${GATEWAY_SCRIPT}"]`);
}
