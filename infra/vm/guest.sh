#!/bin/sh
# PID 1 of the cgroup v2 test VM once init has switched into a tmpfs. Mounts the unified cgroup
# hierarchy as systemd leaves it on a v2 host (controllers enabled at the root, PID 1 in a leaf
# of its own), runs each scenario of /skiff/scenarios through skiff-launch, writes one result
# line per scenario, and reboots (qemu runs with -no-reboot, so it exits).
#
# A scenario is a bundle directory written by the test (test/launcher/cgroup-v2-vm.test.ts):
#   config.json    the OCI config, its root /skiff/rootfs (busybox, and the gate helper)
#   scenario.env   CGROUP: the config's linux.cgroupsPath; READ: files of that cgroup to read;
#                  SETUP: a shell command run in the VM first (e.g. a device node to bind in)
# /skiff/scenarios/list names them in order. Every scenario runs the same way: the launcher
# runs the bundle with a fifo as stdin; each time the container calls `gate NAME` (it prints
# "skiff-gate NAME" and waits for NAME on stdin), the READ files of its cgroup are read into
# at.NAME.<file> (and, at the first gate, the container's /proc/<pid>/cgroup as this VM sees it
# into hostcg), then the container is let on. Once the launcher has exited, the result line is
#   skiff-vm-result NAME key=<base64> ...
# with keys code (the launcher's exit code), stdout, stderr, hostcg, at.*, and after (whether
# the container's cgroup directory is "present" or "absent" after the launcher exited).
# Kernel command line: skiff.only=a,b (run only these), skiff.shell=1 (a shell on the console
# afterwards), skiff.results=ttyS1 (default: the console).

export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mkdir /sys/fs/cgroup/init.scope
echo $$ > /sys/fs/cgroup/init.scope/cgroup.procs
echo "+cpuset +cpu +io +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control

only='' shell='' results=console
for arg in $(cat /proc/cmdline); do
  case $arg in
    skiff.only=*) only=${arg#*=} ;;
    skiff.shell=1) shell=1 ;;
    skiff.results=*) results=${arg#*=} ;;
  esac
done
exec 4>/dev/$results

up() { cut -d' ' -f1 /proc/uptime; }

# run_scenario NAME: runs the bundle, fills /run/results/NAME with one file per result key.
run_scenario() {
  name=$1 dir=/skiff/scenarios/$1 out=/run/results/$1 state=/run/scenario/$1
  mkdir -p "$out" "$state"
  CGROUP='' READ='' SETUP=''
  . "$dir/scenario.env"
  [ -z "$SETUP" ] || sh -c "$SETUP"
  cg=/sys/fs/cgroup$CGROUP
  mkfifo "$state/stdin"
  exec 3<>"$state/stdin" # read-write: opens at once, and is never at end of file
  # timeout(1) bounds the run; its SIGALRM kills the launcher (exit 142), and the launcher's
  # parent-death signal its container.
  (
    timeout -s ALRM 90 /skiff/skiff-launch --root /run/skiff-launch run --bundle "$dir" \
      --pid-file "$state/pid" "$name" <&3 3>&- >"$out/stdout" 2>"$out/stderr"
    echo $? > "$state/code"
  ) &
  seen=0 tick=0
  while [ ! -e "$state/code" ] && [ $tick -lt 1200 ]; do # at most 60 s
    gate=$(grep "^skiff-gate " "$out/stdout" 2>/dev/null | sed -n "$((seen + 1))s/^skiff-gate //p")
    if [ -z "$gate" ]; then
      sleep 0.05
      tick=$((tick + 1))
      continue
    fi
    seen=$((seen + 1))
    if [ $seen = 1 ]; then
      i=0
      while [ ! -s "$state/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
      cat "/proc/$(cat "$state/pid")/cgroup" > "$out/hostcg" 2>&1
    fi
    for f in $READ; do cat "$cg/$f" > "$out/at.$gate.$f" 2>&1; done
    echo "$gate" >&3
  done
  wait
  exec 3>&-
  cp "$state/code" "$out/code" 2>/dev/null || echo none > "$out/code"
  if [ -e "$cg" ]; then echo present > "$out/after"; else echo absent > "$out/after"; fi
}

emit() {
  line="skiff-vm-result $1"
  for f in "/run/results/$1"/*; do line="$line ${f##*/}=$(base64 -w0 < "$f")"; done
  echo "$line" >&4
}

list=$(cat /skiff/scenarios/list 2>/dev/null)
echo "skiff-vm-begin kernel=$(uname -r) cgroupfs=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts) uptime=$(up) scenarios=$(echo $list | wc -w)" >&4
for name in $list; do
  case ",$only," in ,,|*",$name,"*) ;; *) continue ;; esac
  echo "skiff-vm: scenario $name (uptime $(up))"
  run_scenario "$name"
  emit "$name"
done
echo "skiff-vm-end uptime=$(up)" >&4

if [ -n "$shell" ]; then
  echo "skiff-vm: shell; the launcher is /skiff/skiff-launch, bundles are in /skiff/scenarios; exit to power off"
  setsid cttyhack sh -l
fi
reboot -f
