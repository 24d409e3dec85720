import { resolve } from 'node:path';
import { ImageStore } from '@skiff/image';
import { ensureBase, packManifest } from '../images.js';
import { loadManifest } from '../manifest.js';

export const IMAGE_USAGE = `  image base busybox      build the busybox base image into the store
  image pack <dir>        pack a function directory (with function.yaml) onto its base image
  image ls                list the images in the store`;

/** `skiff image …`: returns false when the arguments are not an image command it knows. */
export async function imageCommand(args: string[], storeDir: string): Promise<boolean> {
  const [sub, arg] = args;
  if (sub === 'base' && arg === 'busybox') {
    const d = await ensureBase(await ImageStore.open(storeDir));
    console.log(`busybox:latest ${d.digest}`);
    return true;
  }
  if (sub === 'pack' && arg) {
    const { ref, manifest } = await packManifest(await ImageStore.open(storeDir), loadManifest(resolve(arg)));
    console.log(`${ref} ${manifest.digest}`);
    return true;
  }
  if (sub === 'ls') {
    for (const i of await (await ImageStore.open(storeDir)).list()) console.log(`${i.ref}\t${i.digest}\t${i.size}`);
    return true;
  }
  return false;
}
