import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { SkiffError } from '@skiff/contracts';
import { buildNodeBase, flattenLayers, ImageStore, LayerCache, overlayMarksSupported, unpackImage, unpackLayers, type LayerEvent } from '@skiff/image';
import { ensureBase, packManifest } from '../images.js';
import { loadManifest } from '../manifest.js';
import { REPO_ROOT } from '../paths.js';

export const IMAGE_USAGE = `  image base busybox      build the busybox base image into the store
  image base node         build the node base image (this host's node and its libraries)
  image build <dir>       same as pack
  image pack <dir>        pack a function directory (with function.yaml) onto its base image
  image unpack <layout>:<ref> <dest>
                          unpack an image from an OCI layout into a plain tree at <dest>
                          (layer cache in $SKIFF_DATA_DIR/layers)
  image ls                list the images in the store`;

function usage(message: string): never {
  throw new SkiffError('SKIFF_VALIDATION_FAILED', `${message}\n\n${IMAGE_USAGE}`);
}

/** A progress bar on stderr, redrawn at most every 100 ms; silent when stderr is not a terminal. */
function progress(): (e: LayerEvent) => void {
  let last = 0;
  return (e) => {
    const tty = process.stderr.isTTY;
    if (e.type === 'layer-cached') console.error(`layer ${e.index} ${e.diffId.slice(7, 19)} cached`);
    else if (e.type === 'layer-done') {
      if (tty) process.stderr.write('\r\x1b[K');
      console.error(`layer ${e.index} ${e.diffId.slice(7, 19)} unpacked: ${e.entries} entries, ${(e.bytes / 1e6).toFixed(1)} MB in ${e.ms} ms`);
    } else if (e.type === 'layer-progress' && tty && Date.now() - last > 100) {
      last = Date.now();
      const mb = e.bytes / 1e6;
      const bar = '#'.repeat(Math.min(30, Math.round(mb / 4))).padEnd(30, '.');
      process.stderr.write(`\rlayer ${e.index} [${bar}] ${mb.toFixed(1)} MB`);
    }
  };
}

/** `<layout-dir>:<ref>`: the first ':' whose left side is an OCI layout splits them (refs may hold ':' too). */
function splitSource(arg: string): { layout: string; ref: string } {
  for (let i = arg.indexOf(':'); i > 0; i = arg.indexOf(':', i + 1)) {
    if (existsSync(resolve(arg.slice(0, i), 'oci-layout')) && i < arg.length - 1) return { layout: resolve(arg.slice(0, i)), ref: arg.slice(i + 1) };
  }
  if (!arg.includes(':')) usage(`expected <layout-dir>:<ref>, got ${JSON.stringify(arg)}`);
  throw new SkiffError('SKIFF_IMAGE_NOT_FOUND', `${arg.slice(0, arg.indexOf(':'))} is not an OCI image layout (no oci-layout file), or no ref follows it`);
}

async function unpack(source: string, dest: string): Promise<void> {
  const { layout, ref } = splitSource(source);
  if (existsSync(dest)) throw new SkiffError('SKIFF_VALIDATION_FAILED', `${dest} already exists; unpack writes a new directory`);
  const store = await ImageStore.open(layout);
  const image = await store.resolve(ref);
  const started = performance.now();
  if (!overlayMarksSupported()) {
    // Unprivileged: the layer cache's overlay format needs root; unpack the image directly.
    const r = await unpackImage(store, image.digest, dest);
    console.error(`unpacked ${ref} (${image.digest}) without the layer cache: ${r.entries} entries in ${Math.round(r.ms)} ms`);
    return;
  }
  const dataDir = resolve(REPO_ROOT, process.env.SKIFF_DATA_DIR || '.skiff');
  const cache = new LayerCache(resolve(dataDir, 'layers'));
  const layered = await unpackLayers(store, image.digest, cache, { onEvent: progress() });
  await flattenLayers(layered.layers, dest);
  console.error(`unpacked ${ref} (${image.digest}): ${layered.layers.length} layers, ${layered.unpacked} new, in ${Math.round(performance.now() - started)} ms`);
}

/** `skiff image …`: returns false when the arguments are not an image command it knows. */
export async function imageCommand(args: string[], storeDir: string): Promise<boolean> {
  const [sub, arg, arg2] = args;
  if (sub === 'base' && arg === 'busybox') {
    const d = await ensureBase(await ImageStore.open(storeDir));
    console.log(`busybox:latest ${d.digest}`);
    return true;
  }
  if (sub === 'base' && arg === 'node') {
    const d = await buildNodeBase(await ImageStore.open(storeDir));
    console.log(`node:latest ${d.digest}`);
    return true;
  }
  if ((sub === 'pack' || sub === 'build') && arg) {
    const { ref, manifest } = await packManifest(await ImageStore.open(storeDir), loadManifest(resolve(arg)));
    console.log(`${ref} ${manifest.digest}`);
    return true;
  }
  if (sub === 'unpack') {
    if (!arg || !arg2) usage('image unpack needs <layout-dir>:<ref> and <dest>');
    await unpack(arg, resolve(arg2));
    return true;
  }
  if (sub === 'ls') {
    for (const i of await (await ImageStore.open(storeDir)).list()) console.log(`${i.ref}\t${i.digest}\t${i.size}`);
    return true;
  }
  return false;
}
