import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, REPO, freePort, metricSample as sample } from '@skiff/testkit';

const ECHO_DIR = join(REPO, 'functions/echo');
const ECHO_ENTRY = ['/bin/sh', '/function/handler.sh'];

/** The worker's image metrics, scraped from its Prometheus endpoint (SKIFF_METRICS_PORT). */
describe('image metrics on the worker', () => {
  let p: Platform;
  let metricsUrl: string;
  let work: string;

  const scrape = async (): Promise<string> => {
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    return res.text();
  };
  const invoke = async (fn: string, body: string) => {
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, body);
    return { status: res.status, body: await res.text() };
  };
  /** Compressed size of each layer of a stored image, bottom first. */
  const layerSizes = async (ref: string) => (await p.store.resolve(ref)).manifest.layers.map((l) => l.size);

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    p.start('scheduler');
    // Only the worker gets the variable: each service opens its own port.
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_METRICS_PORT: String(port) }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    work = mkdtempSync(join(tmpdir(), 'skiff-image-metrics-'));
  }, 180_000);
  afterAll(async () => {
    await p?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('counts the layers, bytes and time of the first unpack of an image, and nothing for the next invocation', async () => {
    const before = await scrape();
    expect(before).toMatch(/^target_info\{.*service_name="skiff-worker"/m);
    expect(sample(before, 'skiff_image_layer_unpacked_total')).toBe(0);
    expect(sample(before, 'skiff_image_prepare_duration_count')).toBe(0);

    expect((await p.deploy('echo', ECHO_DIR, ECHO_ENTRY)).status).toBe(201);
    expect(await invoke('echo', 'first')).toEqual({ status: 200, body: 'first' });

    const sizes = await layerSizes('echo:latest');
    const first = await scrape();
    expect(sample(first, 'skiff_image_layer_unpacked_total')).toBe(sizes.length);
    expect(sample(first, 'skiff_image_layer_cached_total')).toBe(0);
    expect(sample(first, 'skiff_image_layer_unpack_duration_count')).toBe(sizes.length);
    expect(sample(first, 'skiff_image_layer_unpack_duration_sum')).toBeGreaterThan(0);
    expect(sample(first, 'skiff_image_layer_read_compressed_total')).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(sample(first, 'skiff_image_layer_read_uncompressed_total')).toBeGreaterThan(sample(first, 'skiff_image_layer_read_compressed_total'));
    expect(sample(first, 'skiff_image_prepare_duration_count', { skiff_image_cached: 'false' })).toBe(1);
    expect(sample(first, 'skiff_image_prepare_duration_count', { skiff_image_cached: 'true' })).toBe(0);
    expect(sample(first, 'skiff_image_prepare_duration_sum')).toBeGreaterThan(0);
    // The mode the worker chose on this machine is one of the two documented values.
    expect(sample(first, 'skiff_image_prepare_duration_count', { skiff_image_mode: 'overlay' }) + sample(first, 'skiff_image_prepare_duration_count', { skiff_image_mode: 'flat' })).toBe(1);

    expect(await invoke('echo', 'second')).toEqual({ status: 200, body: 'second' });
    const second = await scrape();
    for (const name of ['skiff_image_layer_unpacked_total', 'skiff_image_layer_unpack_duration_count', 'skiff_image_layer_read_compressed_total', 'skiff_image_prepare_duration_count']) {
      expect(sample(second, name), name).toBe(sample(first, name));
    }
  });

  it('counts the shared base layer as cached when another image on it is prepared', async () => {
    const dir = mkdtempSync(join(work, 'fn-'));
    cpSync(ECHO_DIR, dir, { recursive: true });
    writeFileSync(join(dir, 'nonce'), randomBytes(16).toString('hex'));
    const before = await scrape();
    expect((await p.deploy('echo2', dir, ECHO_ENTRY)).status).toBe(201);
    expect(await invoke('echo2', 'other')).toEqual({ status: 200, body: 'other' });

    const sizes = await layerSizes('echo2:latest');
    const after = await scrape();
    // Every layer but the function's own is busybox's, unpacked for the first image already.
    expect(sample(after, 'skiff_image_layer_cached_total') - sample(before, 'skiff_image_layer_cached_total')).toBe(sizes.length - 1);
    expect(sample(after, 'skiff_image_layer_unpacked_total') - sample(before, 'skiff_image_layer_unpacked_total')).toBe(1);
    expect(sample(after, 'skiff_image_layer_read_compressed_total') - sample(before, 'skiff_image_layer_read_compressed_total')).toBe(sizes.at(-1));
    expect(sample(after, 'skiff_image_prepare_duration_count', { skiff_image_cached: 'false' })).toBe(2);
  });
});
