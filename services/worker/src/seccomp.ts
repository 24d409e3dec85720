/**
 * The seccomp profile every function runs with: the OCI `linux.seccomp` object the worker
 * puts in config.json. Deny by default (EPERM); allow what an ordinary Linux program (a
 * shell, busybox, node, python, a Go or Rust binary) uses; refuse everything that changes
 * the kernel's or the container's own configuration. The list is ours; syscall names are
 * facts of the kernel ABI.
 *
 * Deliberately absent (so they fail with EPERM): mount, umount2, fsopen/fsmount/move_mount/
 * open_tree and the rest of the new mount API, pivot_root, chroot, unshare, setns, keyctl,
 * add_key, request_key, bpf, perf_event_open, userfaultfd, io_uring_setup/enter/register,
 * ptrace, process_vm_readv/writev, kcmp, open_by_handle_at, name_to_handle_at,
 * kexec_load/kexec_file_load, init_module/finit_module/delete_module, swapon/swapoff,
 * reboot, acct, settimeofday/clock_settime/clock_adjtime/adjtimex, iopl/ioperm,
 * lookup_dcookie, quotactl, vm86, syslog, uselib, ustat, sysfs, nfsservctl, fanotify_init,
 * mbind/set_mempolicy/move_pages/migrate_pages, pidfd_getfd, and the "personality" values
 * other than the harmless ones below.
 */

/** Namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const ENOSYS = 38;
const EPERM = 1;

const ALLOWED: readonly string[] = [
  // files and descriptors
  'access', 'close', 'close_range', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'faccessat', 'faccessat2',
  'fadvise64', 'fallocate', 'fchdir', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchownat', 'fcntl', 'fdatasync',
  'flock', 'fstat', 'fstatfs', 'fsync', 'ftruncate', 'getcwd', 'getdents', 'getdents64', 'lchown', 'link', 'linkat',
  'lseek', 'lstat', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'newfstatat', 'open', 'openat', 'openat2', 'pipe', 'pipe2',
  'pread64', 'preadv', 'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat',
  'readv', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile', 'splice', 'stat', 'statfs', 'statx', 'symlink',
  'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'tee', 'truncate', 'umask', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimes', 'futimesat', 'vmsplice', 'write', 'writev', 'chdir', 'chmod', 'chown', 'memfd_create',
  'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr', 'flistxattr', 'setxattr', 'lsetxattr', 'fsetxattr',
  'removexattr', 'lremovexattr', 'fremovexattr', 'ioctl', 'inotify_init', 'inotify_init1', 'inotify_add_watch',
  'inotify_rm_watch', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify', 'mq_getsetattr',
  // polling and events
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait',
  'epoll_wait_old', 'eventfd', 'eventfd2', 'poll', 'ppoll', 'pselect6', 'select', 'signalfd', 'signalfd4',
  'timerfd_create', 'timerfd_gettime', 'timerfd_settime',
  // memory
  'brk', 'madvise', 'membarrier', 'mincore', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mprotect', 'mremap', 'msync',
  'munlock', 'munlockall', 'munmap', 'get_mempolicy', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages',
  // processes and threads (clone separately, below)
  'arch_prctl', 'capget', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'get_robust_list',
  'set_robust_list', 'get_thread_area', 'set_thread_area', 'set_tid_address', 'getpgid', 'getpgrp', 'getpid',
  'getppid', 'getpriority', 'getrlimit', 'prlimit64', 'setrlimit', 'getrusage', 'getsid', 'gettid', 'kill', 'tgkill',
  'tkill', 'pidfd_open', 'pidfd_send_signal', 'prctl', 'rseq', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'setpgid',
  'setpriority', 'setsid', 'wait4', 'waitid', 'futex', 'futex_waitv', 'restart_syscall', 'ioprio_get', 'ioprio_set',
  'uname', 'sysinfo', 'getrandom', 'getcpu', 'capset',
  // identity (inside the user namespace; no capabilities make most of them no-ops)
  'getegid', 'geteuid', 'getgid', 'getgroups', 'getresgid', 'getresuid', 'getuid', 'setfsgid', 'setfsuid', 'setgid',
  'setgroups', 'setregid', 'setresgid', 'setresuid', 'setreuid', 'setuid',
  // signals
  'alarm', 'pause', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_tgsigqueueinfo', 'sigaltstack',
  // time
  'clock_getres', 'clock_gettime', 'clock_nanosleep', 'gettimeofday', 'nanosleep', 'time', 'times', 'getitimer',
  'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_settime',
  // sockets
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen', 'recvfrom',
  'recvmmsg', 'recvmsg', 'sendmmsg', 'sendmsg', 'sendto', 'setsockopt', 'shutdown', 'socket', 'socketpair',
  // System V IPC (private to the container's ipc namespace)
  'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'semctl', 'semget', 'semop', 'semtimedop', 'shmat', 'shmctl', 'shmdt',
  'shmget',
  // async I/O (not io_uring)
  'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_setup', 'io_submit',
  // landlock lets a program restrict itself further
  'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
];

/** personality(2) values that only select the standard Linux ABI or query it. */
const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

export function defaultSeccompProfile(): object {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: [...ALLOWED], action: 'SCMP_ACT_ALLOW' },
      // Threads and fork, but never a new namespace: all namespace flags must be clear.
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      // clone3 passes its flags in memory, which seccomp cannot inspect: ENOSYS makes
      // glibc and musl fall back to clone, where the rule above applies.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...PERSONALITY_ALLOWED.map((value) => ({
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
      })),
    ],
  };
}
