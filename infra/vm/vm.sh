#!/usr/bin/env bash
# The cgroup v2 test VM: Debian's kernel (unpacked by kernel.sh, which the bootstrap runs) under
# qemu-system-x86_64, with an initramfs of busybox, skiff-launch and the scenarios' bundles.
# test/launcher/cgroup-v2-vm.test.ts runs it; by hand:
#
#   infra/vm/vm.sh --shell                          # a shell in the VM (Ctrl-A x quits qemu)
#   infra/vm/vm.sh --scenarios DIR --only memory    # scenarios the test wrote (SKIFF_KEEP_TEST_DATA=1)
#
# Options:
#   --scenarios DIR   bundles to run, as guest.sh describes (DIR/list names them)
#   --only a,b        run only these scenarios
#   --shell           a shell on the console after the scenarios
#   --launcher FILE   the skiff-launch to put in the VM (default: $SKIFF_TEST_LAUNCHER, or the build)
#   --console FILE    the console (serial port 1) into FILE (default: this terminal)
#   --results FILE    the result lines on serial port 2, into FILE (default: on the console)
#   --work DIR        build the initramfs in DIR and keep it (default: a temporary directory)
#   --timeout S       stop qemu after S seconds (default: none)
#   --append ARGS     more kernel command line arguments (e.g. loglevel=7)
#
# qemu emulates the CPU (TCG) unless SKIFF_VM_ACCEL=kvm: a nested /dev/kvm can be present and
# still fail the guest (seen: kvm-pvm stopping it with INTERNAL_ERROR before the first console
# line), while TCG boots anywhere in about 10 s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
kernel=$repo/services/launcher/build/vm/vmlinuz
launcher=${SKIFF_TEST_LAUNCHER:-$repo/services/launcher/build/skiff-launch}
scenarios='' only='' shell='' console='' results='' work='' timeout='' extra=''

while [ $# -gt 0 ]; do
  case $1 in
    --scenarios) scenarios=$2; shift ;;
    --only) only=$2; shift ;;
    --shell) shell=1 ;;
    --launcher) launcher=$2; shift ;;
    --console) console=$2; shift ;;
    --results) results=$2; shift ;;
    --work) work=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --append) extra=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

for f in "$kernel" "$launcher" /bin/busybox; do
  [ -e "$f" ] || { echo "vm.sh: $f is missing (run infra/bootstrap.sh)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "vm.sh: qemu-system-x86_64 is missing (run infra/bootstrap.sh)" >&2; exit 1; }

if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/skiff-vm-XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi

# ---- the initramfs ----
root=$work/initramfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/skiff/scenarios"
applets() { # DIR: busybox and a link per applet
  cp /bin/busybox "$1/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$1/$a"; done
}
applets "$root/bin"
install -m 0755 "$repo/infra/vm/init" "$root/init"
install -m 0755 "$repo/infra/vm/guest.sh" "$root/skiff/guest.sh"
install -m 0755 "$launcher" "$root/skiff/skiff-launch"
# The containers' root: busybox and the gate helper, mountpoints for the bundles' mounts.
mkdir -p "$root/skiff/rootfs"/{bin,proc,dev,sys,tmp,etc}
applets "$root/skiff/rootfs/bin"
install -m 0755 "$repo/infra/vm/gate" "$root/skiff/rootfs/bin/gate"
[ -z "$scenarios" ] || cp -r "$scenarios/." "$root/skiff/scenarios/"
(cd "$root" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) > "$work/initramfs.cpio"

# ---- the boot ----
append="console=ttyS0 panic=-1 quiet cgroup_no_v1=all"
[ -z "$only" ] || append="$append skiff.only=$only"
[ -z "$shell" ] || append="$append skiff.shell=1"
[ -z "$extra" ] || append="$append $extra"
serial=()
if [ -n "$console" ]; then serial+=(-serial "file:$console"); else serial+=(-serial mon:stdio); fi
if [ -n "$results" ]; then
  serial+=(-serial "file:$results")
  append="$append skiff.results=ttyS1"
fi
accel=(-accel tcg)
[ "${SKIFF_VM_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm)
qemu=(qemu-system-x86_64 "${accel[@]}" -m 512M -smp 1 -nodefaults -display none -no-reboot
      -kernel "$kernel" -initrd "$work/initramfs.cpio" -append "$append" "${serial[@]}")
if [ -n "$timeout" ]; then
  timeout -s KILL "$timeout" "${qemu[@]}"
else
  "${qemu[@]}"
fi
