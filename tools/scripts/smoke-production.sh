#!/usr/bin/env bash
# What the Docker image holds: dist/ plus `npm ci --omit=dev`, nothing else. Start the gateway
# from such a folder and check that it answers, to prove no dev dependency is needed at run time.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
node="$root/node_modules/.bin/node"
scratch=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT

cp "$root/package.json" "$root/package-lock.json" "$scratch/"
# npm workspaces must exist for `npm ci` to accept the lock file; only their manifests are needed.
(cd "$root" && git ls-files '*/package.json' | grep -v '^package.json$') | while read -r manifest; do
  mkdir -p "$scratch/$(dirname "$manifest")"
  cp "$root/$manifest" "$scratch/$manifest"
done
(cd "$scratch" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
mkdir -p "$scratch/dist/apps"
cp -r "$root/dist/apps/api-gateway" "$scratch/dist/apps/"

# The node flags of the image's CMD, read from the Dockerfile as the benchmark reads them.
read -r -a flags < <("$node" --input-type=module -e "
  import { gatewayNodeFlags } from '$root/tools/scripts/production-command.mts';
  console.log(gatewayNodeFlags('$root').join(' '));")

cd "$scratch"
SERVICE_PORT=0 HOST=127.0.0.1 NODE_ENV=production "$node" "${flags[@]}" dist/apps/api-gateway/main.js > gateway.log 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' gateway.log | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "${port:-}" ] || { cat gateway.log; echo "smoke: the gateway did not start"; exit 1; }
body=$(curl -fsS "http://127.0.0.1:$port/heartbeat")
[ "$body" = '{"status":"ok"}' ] || { echo "smoke: unexpected /heartbeat: $body"; exit 1; }
curl -fsS "http://127.0.0.1:$port/info" > /dev/null
echo "smoke: dist/ + production dependencies answer /heartbeat and /info on port $port"
