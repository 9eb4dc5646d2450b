# syntax=docker/dockerfile:1
# The Helix API Gateway image: dist/apps/api-gateway plus the production dependencies on Node 24.
# The tag matches the `node` devDependency, so the image runs the Node that CI tests with.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Every workspace's package.json and the lock file, nothing else: `npm ci` refuses a lock file
# whose workspaces are missing. A change to any source file leaves this stage's output unchanged,
# so the `npm ci` layers below stay cached.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
  && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /manifests \; \
  && cp package-lock.json /manifests/

FROM ${NODE_IMAGE} AS build
ENV NX_DAEMON=false NX_NO_CLOUD=true
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx nx build api-gateway

FROM ${NODE_IMAGE} AS production-deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The seven demo upstreams, for docker-compose.yml only (`target: demo-services`); never shipped.
FROM build AS demo-services
RUN npx nx build demo-services
ENV DEMO_HOST=0.0.0.0
USER node
CMD ["node", "dist/apps/demo-services/main.js"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the gateway's user: the process needs to read its code only.
COPY --from=production-deps /app ./
COPY --from=build /app/dist/apps/api-gateway ./dist/apps/api-gateway
USER node
EXPOSE 3000 9464
# node itself, since the image has no curl; /heartbeat touches no upstream and is never rate limited.
# Over HTTPS when TLS_CERT_FILE is set (the port then speaks nothing else); the certificate is
# not checked on this loopback call, since it names the public host, not 127.0.0.1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "require(process.env.TLS_CERT_FILE ? 'node:https' : 'node:http').get({ host: '127.0.0.1', port: process.env.SERVICE_PORT || 3000, path: '/heartbeat', rejectUnauthorized: false, timeout: 2000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the drain.
# --max-semi-space-size=16 caps V8's young generation at 3 × 16 MiB. Node 24 otherwise lets it
# grow to 128 MiB under load, the largest part of the gateway's RSS. At 8 MiB a request's objects
# outlived two scavenges and were promoted, to be collected again by mark-compact (see the
# README's Performance section). npm run bench, soak and test:rolling read this line and start
# the gateway with the same flags.
CMD ["node", "--max-semi-space-size=16", "dist/apps/api-gateway/main.js"]
