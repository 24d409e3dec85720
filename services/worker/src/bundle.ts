/**
 * The OCI runtime-spec config.json for one function instance, as a pure function of the
 * image config and the invocation. Nothing here touches the filesystem.
 */
import type { ImageConfig } from '@skiff/image';
import type { Invocation } from '@skiff/contracts';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Docker's default masked and read-only paths: kernel interfaces a function has no use for.
const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface InstanceSpec {
  rootfs: string;
  image: ImageConfig;
  invocation: Invocation;
}

function numericUser(user: string | undefined): { uid: number; gid: number } {
  const m = user ? /^(\d+)(?::(\d+))?$/.exec(user) : null;
  if (!m) return { uid: 0, gid: 0 };
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

/** Entrypoint + Cmd, as an OCI image's config defines the process. */
export function processArgs(image: ImageConfig): string[] {
  const args = [...(image.config?.Entrypoint ?? []), ...(image.config?.Cmd ?? [])];
  if (args.length === 0) throw new Error('the image config has neither Entrypoint nor Cmd');
  return args;
}

export function instanceEnv(image: ImageConfig, inv: Invocation): string[] {
  const env = image.config?.Env ?? [DEFAULT_PATH];
  const skiff = [
    `SKIFF_FUNCTION=${inv.fn}`,
    `SKIFF_FUNCTION_VERSION=${inv.fnVersion}`,
    `SKIFF_CALL_ID=${inv.callId}`,
    `SKIFF_DEADLINE_MS=${inv.deadline}`,
  ];
  if (inv.traceparent) skiff.push(`TRACEPARENT=${inv.traceparent}`);
  return [...env.filter((e) => !e.startsWith('SKIFF_') && !e.startsWith('TRACEPARENT=')), ...skiff];
}

export function runtimeSpec({ rootfs, image, invocation }: InstanceSpec): object {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: numericUser(image.config?.User),
      args: processArgs(image),
      env: instanceEnv(image, invocation),
      cwd: image.config?.WorkingDir || '/',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    },
    root: { path: rootfs, readonly: true },
    hostname: invocation.fn,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'cgroup' }],
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}
