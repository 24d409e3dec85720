#!/usr/bin/env bash
# Unpacks the kernel of the cgroup v2 test VM (see vm.sh) into services/launcher/build/vm/:
# Debian's cloud kernel package (linux-image-cloud-amd64, the flavour made for virtual
# machines: a third of the generic kernel's download) is fetched with `apt-get download` and
# only its /boot is unpacked, so nothing is installed into the host's /boot and no modules are
# kept. None are needed: the checks below fail if the package ever stops building in what
# the VM uses. Idempotent; does nothing when the kernel is there.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=services/launcher/build/vm
[ -f "$out/vmlinuz" ] && [ -f "$out/config" ] && exit 0

meta=linux-image-cloud-amd64
pkg_of() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
pkg=$(pkg_of)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(pkg_of)
fi
[ -n "$pkg" ] || { echo "skiff: $meta is not known to apt (apt-cache depends $meta)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chown _apt "$tmp" 2>/dev/null || true # so that apt downloads as its sandbox user, without a warning
echo "skiff: fetching $pkg (the cgroup v2 test VM's kernel)" >&2
if ! (cd "$tmp" && apt-get download -qq "$pkg"); then
  apt-get update -qq # the mirror has moved on since the lists were fetched
  (cd "$tmp" && apt-get download -qq "$pkg")
fi
dpkg-deb --fsys-tarfile "$tmp"/"$pkg"_*.deb | tar -x -C "$tmp" ./boot

# Everything the VM uses must be built in (=y): there is no module in the initramfs.
config=$(echo "$tmp"/boot/config-*)
need=(BLK_DEV_INITRD BINFMT_SCRIPT DEVTMPFS TMPFS SERIAL_8250_CONSOLE CGROUPS MEMCG CGROUP_PIDS
      CGROUP_SCHED FAIR_GROUP_SCHED CFS_BANDWIDTH CPUSETS NAMESPACES UTS_NS IPC_NS USER_NS PID_NS
      NET_NS SECCOMP_FILTER SWAP)
for opt in "${need[@]}"; do
  grep -qx "CONFIG_$opt=y" "$config" || { echo "skiff: $pkg lacks CONFIG_$opt=y" >&2; exit 1; }
done

mkdir -p "$out"
cp "$config" "$out/config.tmp" && mv -f "$out/config.tmp" "$out/config"
echo "$pkg $(dpkg-deb -f "$tmp"/"$pkg"_*.deb Version)" > "$out/package"
# Last: its presence means the rest is complete.
cp "$tmp"/boot/vmlinuz-* "$out/vmlinuz.tmp" && mv -f "$out/vmlinuz.tmp" "$out/vmlinuz"
