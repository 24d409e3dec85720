import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MEDIA, packFunction } from '@skiff/image';
import { Platform, REPO } from '@skiff/testkit';

const ECHO = join(REPO, 'functions/echo');

describe('garbage collection of the image store', () => {
  let p: Platform;
  let deployedDigest: string;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll();
    const res = await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh']);
    deployedDigest = (await res.json()).imageDigest;
    // Re-tag echo:latest to another image: the deployed version's manifest is now untagged.
    await packFunction(p.store, { dir: ECHO, base: 'busybox:latest', ref: 'echo:latest', entrypoint: ['/bin/cat'] });
  });
  afterAll(async () => p?.close());

  const gc = async (graceSeconds?: number) => {
    const res = await p.api('POST', '/v1/images/gc', graceSeconds === undefined ? {} : { graceSeconds });
    expect(res.status).toBe(200);
    return (await res.json()) as { removed: string[]; freedBytes: number; kept: number };
  };

  it('keeps a fresh unreferenced blob during the grace period, removes it after', async () => {
    const orphan = await p.store.putBlob(randomBytes(1000), MEDIA.ociLayerGzip);
    expect((await gc()).removed).not.toContain(orphan.digest);
    const result = await gc(0);
    expect(result.removed).toContain(orphan.digest);
    expect(result.freedBytes).toBeGreaterThanOrEqual(1000);
  });

  it('never removes the image of a deployed version, even untagged', async () => {
    expect((await gc(0)).removed).not.toContain(deployedDigest);
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'still runs');
    expect(await res.text()).toBe('still runs');
  });

  it('removes it once no version of any function uses it', async () => {
    expect((await p.api('DELETE', '/v1/functions/echo')).status).toBe(204);
    expect((await gc(0)).removed).toContain(deployedDigest);
    // Tagged images and their blobs stay.
    expect((await p.store.resolve('busybox:latest')).digest).toMatch(/^sha256:/);
    expect((await p.store.resolve('echo:latest')).digest).not.toBe(deployedDigest);
  });

  it('rejects a bad grace period, naming the field', async () => {
    const res = await p.api('POST', '/v1/images/gc', { graceSeconds: -1 });
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0].field).toBe('body.graceSeconds');
  });
});
