#!/usr/bin/env bash
# Installs what Skiff needs and builds it. `npm start`, `npm test` and `npm run bench` run this
# first; it is idempotent and takes about a second when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: the NATS server, the launcher's build dependencies, the busybox base image's
# source, the runtimes and tools the tests and benchmarks compare against, and strace (tests
# that stop or delay the launcher at a chosen syscall).
PACKAGES=(nats-server gcc make pkg-config libc6-dev libjson-c-dev libseccomp-dev busybox-static perl runc crun umoci skopeo buildah oci-image-tool hyperfine wrk strace)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "skiff: missing system packages: ${missing[*]}" >&2
    echo "skiff: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "skiff: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages: a clean install when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "skiff: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# TypeScript (incremental), the launcher and the worker's stem cell helper (make only rebuilds
# what changed).
npx tsc -b
chmod +x services/cli/dist/main.js
make -s -C services/launcher
make -s -C services/worker/native
