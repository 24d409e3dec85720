import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBusyboxBase } from './busybox.js';
import { hostArchitecture } from './platform.js';
import { ImageStore } from './store.js';
import { unpackImage } from './unpack.js';

const run = promisify(execFile);
const temps: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'skiff-bb-'));
  temps.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('buildBusyboxBase', () => {
  it('is reproducible: two stores, same manifest digest', async () => {
    const a = await ImageStore.open(await temp());
    const b = await ImageStore.open(await temp());
    const t0 = performance.now();
    const da = await buildBusyboxBase(a);
    console.log(`buildBusyboxBase: ${(performance.now() - t0).toFixed(0)} ms`);
    const db = await buildBusyboxBase(b);
    expect(db.digest).toBe(da.digest);
    expect(await a.list()).toEqual([{ ref: 'busybox:latest', digest: da.digest, size: da.size }]);
  });

  it('writes the documented config', async () => {
    const store = await ImageStore.open(await temp());
    await buildBusyboxBase(store, { ref: 'base:v1' });
    const img = await store.resolve('base:v1');
    expect(img.config.os).toBe('linux');
    expect(img.config.architecture).toBe(hostArchitecture());
    expect(img.config.config?.Cmd).toEqual(['/bin/sh']);
    expect(img.config.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(img.manifest.layers).toHaveLength(1);
    expect(img.manifest.layers[0]?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('unpacks to a tree whose shell runs', async () => {
    const store = await ImageStore.open(await temp());
    const desc = await buildBusyboxBase(store);
    const dest = join(await temp(), 'rootfs');
    const t0 = performance.now();
    const res = await unpackImage(store, desc.digest, dest);
    console.log(`unpackImage(busybox): ${(performance.now() - t0).toFixed(0)} ms, ${res.entries} entries, ${res.bytes} bytes`);
    expect(await readlink(join(dest, 'bin/sh'))).toBe('busybox');
    await expect(lstat(join(dest, 'bin/busybox/busybox'))).rejects.toThrow();
    expect((await lstat(join(dest, 'tmp'))).mode & 0o7777).toBe(0o1777);
    for (const d of ['proc', 'sys', 'dev', 'etc', 'root']) expect((await lstat(join(dest, d))).isDirectory()).toBe(true);
    expect(await readFile(join(dest, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:.*\nnobody:x:65534:65534:/);
    expect(await readFile(join(dest, 'etc/group'), 'utf8')).toContain('nobody:x:65534:');
    // The static binary works from the tree: `sh -c` via the applet symlink.
    const { stdout } = await run(join(dest, 'bin/sh'), ['-c', 'echo hello from $0']);
    expect(stdout.trim()).toBe(`hello from ${join(dest, 'bin/sh')}`);
  });

  it('names a missing busybox binary', async () => {
    const store = await ImageStore.open(await temp());
    await expect(buildBusyboxBase(store, { busybox: '/nonexistent/busybox' })).rejects.toMatchObject({
      name: 'SkiffError',
      message: expect.stringContaining('/nonexistent/busybox'),
    });
  });
});
