/**
 * The OCI runtime-spec config.json for one function instance, as a pure function of the
 * image config and the invocation. Nothing here touches the filesystem.
 */
import type { ImageConfig } from '@skiff/image';
import type { Invocation, RunSettings } from '@skiff/contracts';
import { CGROUP_PARENT } from './cgroups.js';
import { RANGE_SIZE } from './uids.js';

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
  fn: string;
  settings: RunSettings;
  /** Skiff's environment variables for the process (see invocationEnv, and the stream instances'). */
  env: string[];
  /** Unique per instance on this node; names its cgroup. */
  instanceId: string;
  /** First host uid/gid of the function's user namespace range (container root maps to it). */
  hostId: number;
  /** The OCI linux.seccomp object applied to every function. */
  seccomp: object;
}

const MIB = 1024 * 1024;
const CPU_PERIOD_US = 100_000;
/** Function processes go first if the whole node runs out of memory, before Skiff's own. */
const OOM_SCORE_ADJ = 900;

/** The image's USER, numeric only (names would need the image's /etc/passwd), inside the mapped range. */
export function numericUser(user: string | undefined): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`the image's User "${user}" is not numeric (uid or uid:gid)`);
  const ids = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  if (ids.uid >= RANGE_SIZE || ids.gid >= RANGE_SIZE) throw new Error(`the image's User "${user}" is outside the ${RANGE_SIZE} ids a function has`);
  return ids;
}

/** Entrypoint + Cmd, as an OCI image's config defines the process. */
export function processArgs(image: ImageConfig): string[] {
  const args = [...(image.config?.Entrypoint ?? []), ...(image.config?.Cmd ?? [])];
  if (args.length === 0) throw new Error('the image config has neither Entrypoint nor Cmd');
  return args;
}

/** Skiff's variables for one exec-mode invocation. */
export function invocationEnv(inv: Invocation): string[] {
  const env = [
    `SKIFF_FUNCTION=${inv.fn}`,
    `SKIFF_FUNCTION_VERSION=${inv.fnVersion}`,
    `SKIFF_CALL_ID=${inv.callId}`,
    `SKIFF_DEADLINE_MS=${inv.deadline}`,
  ];
  if (inv.traceparent) env.push(`TRACEPARENT=${inv.traceparent}`);
  // Async invocations: which attempt this is, and the caller's key, to make a retry's effect happen once.
  if (inv.attempt) env.push(`SKIFF_ATTEMPT=${inv.attempt}`);
  if (inv.idempotencyKey) env.push(`SKIFF_IDEMPOTENCY_KEY=${inv.idempotencyKey}`);
  // Subject triggers: the message's subject and the event's id (its headers reach the node runtime only).
  if (inv.event) env.push(`SKIFF_EVENT_SUBJECT=${inv.event.subject}`, `SKIFF_EVENT_ID=${inv.event.id}`);
  return env;
}

/** Variables only Skiff sets; an image's own values for them are dropped. */
const RESERVED = new Set(['SKIFF_FUNCTION', 'SKIFF_FUNCTION_VERSION', 'SKIFF_CALL_ID', 'SKIFF_DEADLINE_MS', 'SKIFF_MAX_BODY_BYTES', 'SKIFF_STEM', 'SKIFF_ATTEMPT', 'SKIFF_IDEMPOTENCY_KEY', 'SKIFF_EVENT_SUBJECT', 'SKIFF_EVENT_ID', 'TRACEPARENT']);
const nameOf = (kv: string) => kv.slice(0, kv.indexOf('=') >>> 0);

/** The image's environment (e.g. SKIFF_HANDLER) with Skiff's own variables last; the image cannot forge them. */
export function processEnv(image: ImageConfig, skiff: string[]): string[] {
  const env = image.config?.Env ?? [DEFAULT_PATH];
  const taken = new Set([...RESERVED, ...skiff.map(nameOf)]);
  return [...env.filter((e) => !taken.has(nameOf(e))), ...skiff];
}

export function runtimeSpec({ rootfs, image, fn, settings: limits, env, instanceId, hostId, seccomp }: InstanceSpec): object {
  const idMap = [{ containerID: 0, hostID: hostId, size: RANGE_SIZE }];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: numericUser(image.config?.User),
      args: processArgs(image),
      env: processEnv(image, env),
      cwd: image.config?.WorkingDir || '/',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      oomScoreAdj: OOM_SCORE_ADJ,
    },
    root: { path: rootfs, readonly: true },
    hostname: fn,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${limits.tmpMb}m`] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'cgroup' }, { type: 'user' }],
      uidMappings: idMap,
      gidMappings: idMap,
      cgroupsPath: `/${CGROUP_PARENT}/${fn}/${instanceId}`,
      resources: {
        memory: { limit: limits.memoryMb * MIB, swap: limits.memoryMb * MIB },
        cpu: { quota: Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US)), period: CPU_PERIOD_US },
        pids: { limit: limits.maxProcesses },
      },
      seccomp,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}
