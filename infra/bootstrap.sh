#!/usr/bin/env bash
# Installs what Skiff needs and builds it. `npm start`, `npm test` and `npm run bench` run this
# first; it is idempotent and takes about a second when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: the NATS server, the launcher's build dependencies, the busybox base image's
# source, the runtimes and tools the tests and benchmarks compare against, and strace (tests
# that stop or delay the launcher at a chosen syscall).
PACKAGES=(nats-server gcc make pkg-config libc6-dev libjson-c-dev libseccomp-dev busybox-static perl runc crun umoci skopeo buildah oci-image-tool hyperfine wrk strace)

# Without their recommends: the cgroup v2 test VM's qemu (infra/vm; GUI, firmware, disk tools:
# none used; its kernel is unpacked into the launcher's build dir, not installed), and the
# Prometheus server the metrics suite starts on a free port (its exporters are not used; the
# package's own service is not started where no init runs it).
BARE_PACKAGES=(qemu-system-x86 prometheus)

missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${PACKAGES[@]}")
mapfile -t missing_bare < <(missing_of "${BARE_PACKAGES[@]}")
if [ $((${#missing[@]} + ${#missing_bare[@]})) -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    cmd="apt-get update"
    [ ${#missing[@]} -eq 0 ] || cmd+=" && apt-get install -y ${missing[*]}"
    [ ${#missing_bare[@]} -eq 0 ] || cmd+=" && apt-get install -y --no-install-recommends ${missing_bare[*]}"
    echo "skiff: missing system packages: ${missing[*]} ${missing_bare[*]}" >&2
    echo "skiff: run as root: $cmd" >&2
    exit 1
  fi
  echo "skiff: installing ${missing[*]} ${missing_bare[*]}" >&2
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ ${#missing_bare[@]} -eq 0 ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_bare[@]}" >/dev/null
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
# The VM's kernel (Debian's cloud kernel, from the package mirror) beside the launcher's build.
infra/vm/kernel.sh
