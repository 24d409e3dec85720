import { describe, expect, it } from 'vitest';
import type { ImageConfig } from '@skiff/image';
import type { Invocation } from '@skiff/contracts';
import { instanceEnv, processArgs, runtimeSpec } from './bundle.js';

const inv: Invocation = {
  callId: 'c1',
  deadline: 1_700_000_000_000,
  fn: 'echo',
  fnVersion: 3,
  image: `sha256:${'a'.repeat(64)}`,
  mode: 'exec',
  limits: { memoryMb: 64, cpus: 0.5, maxProcesses: 32, tmpMb: 8 },
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

const image = (config: ImageConfig['config']): ImageConfig => ({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } });

describe('runtimeSpec', () => {
  it('runs Entrypoint then Cmd', () => {
    expect(processArgs(image({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['cat'] }))).toEqual(['/bin/sh', '-c', 'cat']);
    expect(() => processArgs(image({}))).toThrow(/Entrypoint nor Cmd/);
  });

  it('gives the function its identity and deadline, and no SKIFF_ variables from the image', () => {
    const env = instanceEnv(image({ Env: ['PATH=/bin', 'SKIFF_CALL_ID=forged'] }), inv);
    expect(env).toEqual([
      'PATH=/bin',
      'SKIFF_FUNCTION=echo',
      'SKIFF_FUNCTION_VERSION=3',
      'SKIFF_CALL_ID=c1',
      `SKIFF_DEADLINE_MS=${inv.deadline}`,
      `TRACEPARENT=${inv.traceparent}`,
    ]);
  });

  it('isolates: read-only root, every namespace but user, no capabilities, no new privileges', () => {
    const spec = runtimeSpec({ rootfs: '/r', image: image({ Cmd: ['cat'], User: '1000:1001', WorkingDir: '/function' }), invocation: inv }) as any;
    expect(spec.root).toEqual({ path: '/r', readonly: true });
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1001 });
    expect(spec.process.cwd).toBe('/function');
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(Object.values(spec.process.capabilities).every((s) => Array.isArray(s) && s.length === 0)).toBe(true);
    expect(spec.linux.namespaces.map((n: { type: string }) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.mounts.map((m: { destination: string }) => m.destination)).toEqual(['/proc', '/dev', '/tmp']);
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
    expect(spec.hostname).toBe('echo');
  });
});
