// The rendered Kubernetes manifests (`kubectl kustomize deploy/k8s`) checked against the image
// that was really built (`podman image inspect`), by tools/image/smoke.sh:
//   node k8s-matches-image.ts RENDERED.yaml IMAGE.json UID:GID [POD_DIR]
// UID:GID is what the image's USER runs as (smoke.sh reads it off the running container).
// With POD_DIR, it also lays out what the kubelet would give the pod, for smoke.sh to run the
// image with: `env` (the ConfigMap environment), `volumes/<name>/` (ConfigMap volumes),
// `mounts`, `tmpfs`, `ports`, `probes` and `user`. Exits 1 naming every mismatch.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

interface Probe {
  httpGet?: { path?: string; port?: number | string; scheme?: string };
}
interface Container {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: object }[];
  envFrom?: { configMapRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: { readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string };
  emptyDir?: object;
}
interface KubeObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    template?: {
      metadata?: { annotations?: Record<string, string> };
      spec: {
        securityContext?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean };
        containers: Container[];
        volumes?: Volume[];
      };
    };
    ports?: { name?: string; targetPort?: number | string }[];
  };
}
interface ImageConfig {
  RepoTags?: string[];
  /** podman keeps a Docker-format image's HEALTHCHECK here, beside Config. */
  Healthcheck?: { Test?: string[] };
  Config: {
    User?: string;
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Healthcheck?: { Test?: string[] };
  };
}

const [renderedFile, imageFile, owner, podDir] = process.argv.slice(2);
if (!renderedFile || !imageFile || !/^\d+:\d+$/.test(owner ?? '')) {
  process.stderr.write('usage: k8s-matches-image.ts RENDERED.yaml IMAGE.json UID:GID [POD_DIR]\n');
  process.exit(2);
}
const [uid, gid] = owner.split(':').map(Number);
const objects = parseAllDocuments(readFileSync(renderedFile, 'utf8')).map(
  (document) => document.toJS() as KubeObject,
);
const [image] = JSON.parse(readFileSync(imageFile, 'utf8')) as ImageConfig[];
const { version } = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../../package.json'), 'utf8'),
) as { version: string };
const problems: string[] = [];
const ok = (line: string) => process.stdout.write(`ok  ${line}\n`);
const check = (condition: boolean, problem: string, line: string) =>
  condition ? ok(line) : problems.push(problem);

const find = (kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata.name === name);
const deployment = find('Deployment', 'helix-gateway');
const pod = deployment?.spec?.template?.spec;
const container = pod?.containers.find((candidate) => candidate.name === 'gateway');
if (!deployment || !pod || !container) {
  process.stderr.write(`${renderedFile}: no Deployment helix-gateway with a container gateway\n`);
  process.exit(1);
}

// The environment the pod gets: its ConfigMaps (envFrom), then its own env entries.
const env = new Map<string, string>();
for (const source of container.envFrom ?? []) {
  const name = source.configMapRef?.name;
  const configMap = name ? find('ConfigMap', name) : undefined;
  if (!configMap) problems.push(`envFrom names ConfigMap ${name}, which is not rendered`);
  for (const [key, value] of Object.entries(configMap?.data ?? {})) env.set(key, value);
}
const fromSecrets: string[] = [];
for (const entry of container.env ?? []) {
  if (entry.value !== undefined) env.set(entry.name, entry.value);
  else fromSecrets.push(entry.name);
}

const imageName = `helix-api-gateway:${version}`;
check(
  container.image === imageName && (image.RepoTags ?? []).includes(`localhost/${imageName}`),
  `image ${container.image}: the build is tagged ${image.RepoTags?.join(', ')}`,
  `image ${container.image} is the image built (package.json version ${version})`,
);

// Ports: the Deployment's container ports are exactly what the image EXPOSEs, and the
// variables that choose them agree.
const exposed = Object.keys(image.Config.ExposedPorts ?? {}).sort();
const declared = (container.ports ?? []).map((port) => `${port.containerPort}/tcp`).sort();
check(
  exposed.join(' ') === declared.join(' '),
  `containerPorts ${declared.join(' ')} differ from the image's EXPOSE ${exposed.join(' ')}`,
  `containerPorts ${declared.join(' ')} = EXPOSE`,
);
const portNumber = (port: number | string | undefined): number | undefined =>
  typeof port === 'number'
    ? port
    : container.ports?.find((candidate) => candidate.name === port)?.containerPort;
for (const [variable, portName] of [
  ['SERVICE_PORT', 'http'],
  ['METRICS_PORT', 'metrics'],
] as const) {
  const port = portNumber(portName);
  check(
    env.get(variable) === String(port),
    `${variable}=${env.get(variable)} but the ${portName} port is ${port}`,
    `${variable}=${env.get(variable)} is the ${portName} port`,
  );
}
const scrapePort = deployment.spec?.template?.metadata?.annotations?.['prometheus.io/port'];
check(
  scrapePort === String(portNumber('metrics')),
  `prometheus.io/port ${scrapePort} is not the metrics port`,
  `prometheus.io/port ${scrapePort} is the metrics port`,
);
for (const port of find('Service', 'helix-gateway')?.spec?.ports ?? []) {
  check(
    portNumber(port.targetPort) !== undefined,
    `Service port ${port.name}: targetPort ${port.targetPort} is no container port`,
    `Service port ${port.name} -> ${port.targetPort} (${portNumber(port.targetPort)})`,
  );
}

// Probes: readiness on /health, liveness and start-up on /heartbeat, the path the image's own
// HEALTHCHECK calls; HTTPS exactly when the port speaks TLS.
const tls = env.has('TLS_CERT_FILE');
const healthcheck = ((image.Healthcheck ?? image.Config.Healthcheck)?.Test ?? []).join(' ');
const probes: string[] = [];
for (const [kind, path] of [
  ['readinessProbe', '/health'],
  ['livenessProbe', '/heartbeat'],
  ['startupProbe', '/heartbeat'],
] as const) {
  const get = container[kind]?.httpGet;
  const port = portNumber(get?.port);
  const scheme = get?.scheme ?? 'HTTP';
  check(
    get?.path === path && port === portNumber('http') && scheme === (tls ? 'HTTPS' : 'HTTP'),
    `${kind}: ${scheme} ${get?.path} on port ${get?.port}, expected ${path} on http over ${tls ? 'HTTPS' : 'HTTP'}`,
    `${kind}: ${scheme} ${path} on port ${get?.port} (${port})`,
  );
  probes.push(`${kind} ${scheme} ${get?.path} ${port}`);
}
check(
  healthcheck.includes(`path: '/heartbeat'`),
  `the image's HEALTHCHECK does not call /heartbeat: ${healthcheck}`,
  `the image's HEALTHCHECK calls /heartbeat too`,
);

// The user: the pod runs as what the image's USER is.
const security = pod.securityContext;
check(
  security?.runAsNonRoot === true && security.runAsUser === uid && security.runAsGroup === gid,
  `runAsUser/runAsGroup ${security?.runAsUser}:${security?.runAsGroup}, the image runs as ${owner} (${image.Config.User})`,
  `runAsUser ${security?.runAsUser}:${security?.runAsGroup} is the image's USER ${image.Config.User}`,
);
check(
  container.securityContext?.readOnlyRootFilesystem === true &&
    (container.securityContext.capabilities?.drop ?? []).includes('ALL'),
  'the container must have a read-only root and drop ALL capabilities (the image is run so)',
  'readOnlyRootFilesystem, capabilities drop ALL',
);

// Mounts: every one names a volume, none hides the image's code, and every file a variable
// names lies in a mount that carries it.
const workdir = image.Config.WorkingDir ?? '/';
const volumes = new Map((pod.volumes ?? []).map((volume) => [volume.name, volume]));
const mounts = container.volumeMounts ?? [];
for (const mount of mounts) {
  const inside = (a: string, b: string) => a === b || a.startsWith(`${b.replace(/\/$/, '')}/`);
  check(
    volumes.has(mount.name) &&
      !inside(workdir, mount.mountPath) &&
      !inside(mount.mountPath, workdir),
    `volumeMount ${mount.name} at ${mount.mountPath}: no such volume, or it covers ${workdir}`,
    `volumeMount ${mount.name} at ${mount.mountPath}`,
  );
}
function carries(variable: string, file: string): void {
  const mount = mounts.find((candidate) => candidate.mountPath === posix.dirname(file));
  const volume = mount && volumes.get(mount.name);
  const name = posix.basename(file);
  const fromConfigMap = volume?.configMap
    ? (volume.configMap.items?.some((item) => item.path === name) ?? true) &&
      find('ConfigMap', volume.configMap.name)?.data?.[
        volume.configMap.items?.find((item) => item.path === name)?.key ?? name
      ] !== undefined
    : false;
  // A kubernetes.io/tls Secret holds tls.crt and tls.key.
  const fromSecret = Boolean(volume?.secret) && ['tls.crt', 'tls.key'].includes(name);
  check(
    Boolean(mount?.readOnly) && (fromConfigMap || fromSecret),
    `${variable}=${file}: no read-only mount at ${posix.dirname(file)} carries ${name}`,
    `${variable}=${file} is carried by volume ${mount?.name}, mounted read-only`,
  );
}
for (const variable of ['GATEWAY_ROUTES_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE']) {
  const file = env.get(variable);
  if (file) carries(variable, file);
}

for (const problem of problems) process.stderr.write(`${renderedFile}: ${problem}\n`);
if (problems.length > 0) process.exit(1);

if (podDir) {
  mkdirSync(podDir, { recursive: true });
  writeFileSync(join(podDir, 'env'), [...env].map(([key, value]) => `${key}=${value}\n`).join(''));
  const lines = { mounts: [] as string[], tmpfs: [] as string[] };
  for (const mount of mounts) {
    const volume = volumes.get(mount.name);
    if (volume?.emptyDir) lines.tmpfs.push(mount.mountPath);
    else if (volume?.configMap) {
      const { data = {} } = find('ConfigMap', volume.configMap.name) ?? {};
      const items = volume.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        const file = join(podDir, 'volumes', mount.name, item.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, data[item.key] ?? '');
      }
      lines.mounts.push(`${mount.name} ${mount.mountPath}`);
    } else
      problems.push(`volume ${mount.name}: only ConfigMap and emptyDir volumes can be laid out`);
  }
  writeFileSync(join(podDir, 'mounts'), lines.mounts.map((line) => `${line}\n`).join(''));
  writeFileSync(join(podDir, 'tmpfs'), lines.tmpfs.map((line) => `${line}\n`).join(''));
  writeFileSync(join(podDir, 'ports'), declared.map((port) => `${parseInt(port)}\n`).join(''));
  writeFileSync(join(podDir, 'probes'), probes.map((line) => `${line}\n`).join(''));
  writeFileSync(join(podDir, 'user'), `${uid}:${gid}\n`);
  for (const problem of problems) process.stderr.write(`${renderedFile}: ${problem}\n`);
  if (problems.length > 0) process.exit(1);
  if (fromSecrets.length > 0)
    ok(`left out of the pod's environment (Secrets): ${fromSecrets.join(', ')}`);
}
process.stdout.write(`${renderedFile}: the Deployment matches the image\n`);
