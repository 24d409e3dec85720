#!/usr/bin/env node
import { resolve } from 'node:path';
import { ImageStore } from '@skiff/image';
import { ensureBase, packManifest } from './images.js';
import { loadManifest } from './manifest.js';
import { REPO_ROOT } from './paths.js';
import { up } from './up.js';

const USAGE = `usage: skiff <command>

  up                      start nats-server, gateway, scheduler and worker; deploy the examples
  image base busybox      build the busybox base image into the store
  image pack <dir>        pack a function directory (with function.yaml) onto its base image
  image ls                list the images in the store

Environment: SKIFF_DATA_DIR (default .skiff in the checkout), SKIFF_PORT (8080),
SKIFF_NATS_URL (default: start nats-server on SKIFF_NATS_PORT, 4222), SKIFF_ADMIN_TOKEN.`;

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw ? Number(raw) : fallback;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const dataDir = resolve(REPO_ROOT, process.env.SKIFF_DATA_DIR || '.skiff');
  const storeDir = resolve(dataDir, process.env.SKIFF_STORE_DIR || 'store');
  const [cmd, sub, arg] = argv;
  if (cmd === 'up') {
    return up({
      dataDir,
      port: port('SKIFF_PORT', 8080),
      natsUrl: process.env.SKIFF_NATS_URL || undefined,
      natsPort: port('SKIFF_NATS_PORT', 4222),
      adminToken: process.env.SKIFF_ADMIN_TOKEN || undefined,
    });
  }
  if (cmd === 'image' && sub === 'base' && arg === 'busybox') {
    const d = await ensureBase(await ImageStore.open(storeDir));
    return console.log(`busybox:latest ${d.digest}`);
  }
  if (cmd === 'image' && sub === 'pack' && arg) {
    const { ref, manifest } = await packManifest(await ImageStore.open(storeDir), loadManifest(resolve(arg)));
    return console.log(`${ref} ${manifest.digest}`);
  }
  if (cmd === 'image' && sub === 'ls') {
    for (const i of await (await ImageStore.open(storeDir)).list()) console.log(`${i.ref}\t${i.digest}\t${i.size}`);
    return;
  }
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') return console.log(USAGE);
  throw new Error(`unknown command "${argv.join(' ')}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`skiff: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
