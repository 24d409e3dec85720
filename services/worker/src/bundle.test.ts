import { describe, expect, it } from 'vitest';
import type { ImageConfig } from '@skiff/image';
import { DEFAULT_SETTINGS, type Invocation } from '@skiff/contracts';
import { invocationEnv, numericUser, processArgs, processEnv, runtimeSpec } from './bundle.js';

const inv: Invocation = {
  callId: 'c1',
  deadline: 1_700_000_000_000,
  fn: 'echo',
  fnVersion: 3,
  image: `sha256:${'a'.repeat(64)}`,
  mode: 'exec',
  settings: { ...DEFAULT_SETTINGS, memoryMb: 64, cpus: 0.5, maxProcesses: 32, tmpMb: 8 },
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

const image = (config: ImageConfig['config']): ImageConfig => ({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } });
const spec = (config: ImageConfig['config'], over: Partial<Parameters<typeof runtimeSpec>[0]> = {}) =>
  runtimeSpec({ rootfs: '/r', image: image(config), fn: 'echo', settings: inv.settings, env: [], instanceId: 'i1', hostId: 3_000_000, seccomp: {}, ...over }) as any;

describe('runtimeSpec', () => {
  it('runs Entrypoint then Cmd', () => {
    expect(processArgs(image({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['cat'] }))).toEqual(['/bin/sh', '-c', 'cat']);
    expect(() => processArgs(image({}))).toThrow(/Entrypoint nor Cmd/);
  });

  it('gives the function its identity and deadline, and no SKIFF_ variables from the image', () => {
    const env = processEnv(image({ Env: ['PATH=/bin', 'SKIFF_CALL_ID=forged', 'SKIFF_HANDLER=/function/index.mjs', 'TRACEPARENT=forged'] }), invocationEnv(inv));
    expect(env).toEqual([
      'PATH=/bin',
      'SKIFF_HANDLER=/function/index.mjs',
      'SKIFF_FUNCTION=echo',
      'SKIFF_FUNCTION_VERSION=3',
      'SKIFF_CALL_ID=c1',
      `SKIFF_DEADLINE_MS=${inv.deadline}`,
      `TRACEPARENT=${inv.traceparent}`,
    ]);
  });

  it('reads only numeric users inside the mapped range', () => {
    expect(numericUser(undefined)).toEqual({ uid: 0, gid: 0 });
    expect(numericUser('7')).toEqual({ uid: 7, gid: 7 });
    expect(() => numericUser('app')).toThrow(/not numeric/);
    expect(() => numericUser('70000')).toThrow(/outside/);
  });

  it('isolates: read-only root, all seven namespaces, root mapped to the function range, no capabilities', () => {
    const seccomp = { defaultAction: 'SCMP_ACT_ERRNO' };
    const s = spec({ Cmd: ['cat'], User: '1000:1001', WorkingDir: '/function' }, { seccomp });
    expect(s.root).toEqual({ path: '/r', readonly: true });
    expect(s.process.user).toEqual({ uid: 1000, gid: 1001 });
    expect(s.process.cwd).toBe('/function');
    expect(s.process.noNewPrivileges).toBe(true);
    expect(Object.values(s.process.capabilities).every((c) => Array.isArray(c) && c.length === 0)).toBe(true);
    expect(s.linux.namespaces.map((n: { type: string }) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
    expect(s.linux.uidMappings).toEqual([{ containerID: 0, hostID: 3_000_000, size: 65_536 }]);
    expect(s.linux.gidMappings).toEqual(s.linux.uidMappings);
    expect(s.linux.seccomp).toBe(seccomp);
    expect(s.mounts.map((m: { destination: string }) => m.destination)).toEqual(['/proc', '/dev', '/tmp', '/sys']);
    expect(s.mounts[2].options).toContain('size=8m');
    expect(s.linux.maskedPaths).toContain('/proc/kcore');
    expect(s.hostname).toBe('echo');
  });

  it('turns the function settings into cgroup limits under a per-instance path', () => {
    const s = spec({ Cmd: ['cat'] });
    expect(s.linux.cgroupsPath).toBe('/skiff/echo/i1');
    expect(s.linux.resources).toEqual({
      memory: { limit: 64 * 1024 * 1024, swap: 64 * 1024 * 1024 },
      cpu: { quota: 50_000, period: 100_000 },
      pids: { limit: 32 },
    });
  });
});
