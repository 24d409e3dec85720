// `npm run bench unpack`: unpack of the busybox and node base images by Skiff (layer cache
// + read-only overlay mount, what the worker does), `umoci unpack` and `oci-image-tool
// unpack`, same image, same run, alternating. Plus: a second function on the same base,
// which should unpack only its own layer, and how long this process's event loop was held
// up while Skiff unpacked (the worker must keep serving meanwhile). Needs root (mounts) and
// umoci/oci-image-tool.
import { execFileSync } from 'node:child_process';
import { createHistogram } from 'node:perf_hooks';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alternate, report, summarize } from '../lib/stats.mjs';

export const description = 'image unpack: skiff (layers + overlay) vs umoci vs oci-image-tool';

const image = await import('../../../services/image/dist/index.js');

/** Samples how late a 5 ms timer fires (the event loop's delay) into `hist` until the returned stop is called. */
function sampleLoopDelay(hist) {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    hist.record(Math.max(1, Math.round((now - last - 5) * 1e6)));
    last = now;
  }, 5);
  return () => clearInterval(timer);
}

function have(tool) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function run({ runs }) {
  if (process.getuid?.() !== 0) return console.log('  skipped: needs root (overlay mounts, umoci as root)');
  // Each run writes ~100 MB for node; a handful of runs gives stable medians on a shared machine.
  const n = Math.min(runs, Number(process.env.BENCH_UNPACK_RUNS ?? 7));
  // Where the worker keeps its layer cache: the data dir (.skiff in the checkout unless
  // SKIFF_DATA_DIR says otherwise). Every contender writes below the same directory. Not
  // /tmp: on some machines its file system group is slow to allocate inodes (measured here:
  // 250 µs of kernel CPU per symlink under /tmp, 11 µs elsewhere on the same ext4).
  const dataDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../..', process.env.SKIFF_DATA_DIR || '.skiff');
  mkdirSync(dataDir, { recursive: true });
  const root = mkdtempSync(join(dataDir, 'bench-unpack-'));
  try {
    const store = await image.ImageStore.open(join(root, 'store'));
    await image.buildBusyboxBase(store, { ref: 'busybox:latest' });
    await image.buildNodeBase(store, { ref: 'node:latest' });
    // The worker starts its unpack thread when it starts (a LayerCache warms one), so a run
    // here does not pay for that either.
    new image.LayerCache(join(root, 'warm'));
    let k = 0;
    // Sampled only while Skiff unpacks (umoci and oci-image-tool run synchronously).
    const loopDelay = createHistogram();
    for (const ref of ['busybox:latest', 'node:latest']) {
      const { digest } = await store.resolve(ref);
      const contenders = {
        skiff: async () => {
          const dir = join(root, `s${k++}`);
          const cache = new image.LayerCache(join(dir, 'layers'));
          const stop = sampleLoopDelay(loopDelay);
          const { layers } = await image.unpackLayers(store, digest, cache).finally(stop);
          const top = await image.ensureMountPointsLayer(cache.root);
          mkdirSync(join(dir, 'rootfs'));
          await image.mountOverlay([...layers.map((l) => l.dir), top], join(dir, 'rootfs'), cache.root);
        },
      };
      if (have('umoci')) contenders.umoci = async () => execFileSync('umoci', ['unpack', '--image', `${join(root, 'store')}:${ref}`, join(root, `u${k++}`)], { stdio: 'ignore' });
      if (have('oci-image-tool')) contenders['oci-image-tool'] = async () => execFileSync('oci-image-tool', ['unpack', '--ref', `name=${ref}`, join(root, 'store'), join(root, `o${k++}`)], { stdio: 'ignore' });
      // Each run starts with no dirty page cache (otherwise the kernel throttles whichever
      // writer comes after a few hundred MB of others' unwritten output, fast writers most)
      // and with the blobs in the page cache: a machine that reclaims idle file pages within
      // seconds (DAMON) would otherwise make some runs read them from disk and others not.
      const blobs = join(root, 'store', 'blobs', 'sha256');
      const before = () => {
        execFileSync('sync');
        for (const name of readdirSync(blobs)) readFileSync(join(blobs, name));
      };
      const samples = await alternate(n, contenders, { before });
      for (const m of await image.mountsUnder(root)) await image.unmount(m);
      for (const name of await import('node:fs').then((fs) => fs.readdirSync(root))) if (name !== 'store') rmSync(join(root, name), { recursive: true, force: true });
      report(`unpack ${ref} (${n} runs each; fewer than BENCH_RUNS because each run writes the whole image)`, Object.entries(samples).map(([k2, v]) => summarize(k2, v)), 'umoci');
    }

    const ms = (ns) => (ns / 1e6).toFixed(1);
    console.log(`\n  event-loop delay of this process while skiff unpacked: p50 ${ms(loopDelay.percentile(50))} ms, p99 ${ms(loopDelay.percentile(99))} ms, max ${ms(loopDelay.max)} ms`);

    // Second function on the same base: only its own layer is unpacked.
    const fnDir = join(root, 'fn');
    mkdirSync(fnDir);
    writeFileSync(join(fnDir, 'index.js'), 'export default () => "hi";\n');
    const cache = new image.LayerCache(join(root, 'shared', 'layers'));
    const a = await image.packFunction(store, { dir: fnDir, base: 'node:latest', ref: 'fa:1', entrypoint: ['/usr/local/bin/node', '/function/index.js'] });
    writeFileSync(join(fnDir, 'index.js'), 'export default () => "other";\n');
    const b = await image.packFunction(store, { dir: fnDir, base: 'node:latest', ref: 'fb:1', entrypoint: ['/usr/local/bin/node', '/function/index.js'] });
    const first = await image.unpackLayers(store, a.digest, cache);
    const second = await image.unpackLayers(store, b.digest, cache);
    console.log(`  first function on node base: ${first.unpacked} layers unpacked in ${first.ms.toFixed(1)} ms`);
    console.log(`  second function, same base:  ${second.unpacked} layer unpacked in ${second.ms.toFixed(1)} ms`);
  } finally {
    for (const m of await image.mountsUnder(root)) await image.unmount(m);
    rmSync(root, { recursive: true, force: true });
  }
}
