#!/usr/bin/env node
import { resolve } from 'node:path';
import { IMAGE_USAGE, imageCommand } from './commands/image.js';
import { prepareNatsServer, writeRoleEnvFiles } from './nats-server.js';
import { REPO_ROOT } from './paths.js';
import { up } from './up.js';

const USAGE = `usage: skiff <command>

  up                      start nats-server, gateway, scheduler and worker; deploy the examples
${IMAGE_USAGE}
  nats-config <dir>       write nats-server's config (a user per service) and each service's
                          credentials as <role>.env into <dir>, keeping credentials already there
                          (what the systemd units run before nats-server)

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
  const [cmd, ...rest] = argv;
  if (cmd === 'up') {
    return up({
      dataDir,
      port: port('SKIFF_PORT', 8080),
      natsUrl: process.env.SKIFF_NATS_URL || undefined,
      natsPort: port('SKIFF_NATS_PORT', 4222),
      adminToken: process.env.SKIFF_ADMIN_TOKEN || undefined,
    });
  }
  if (cmd === 'image' && (await imageCommand(rest, storeDir))) return;
  if (cmd === 'nats-config' && rest.length === 1) {
    const dir = resolve(rest[0]!);
    const { configFile, credentials } = prepareNatsServer(dir);
    for (const f of [configFile, ...writeRoleEnvFiles(dir, credentials)]) console.log(f);
    return;
  }
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') return console.log(USAGE);
  throw new Error(`unknown command "${argv.join(' ')}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`skiff: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
