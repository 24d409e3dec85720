#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, stopOnSignals } from '@skiff/service-kit';
import { ImageStore } from '@skiff/image';
import { startTelemetry } from '@skiff/telemetry';
import { build } from './app.js';
import { ensureAdminKey } from './auth.js';
import { loadConfig } from './config.js';
import { Messaging } from './messaging.js';
import { Registry } from './registry.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const log = createLogger('gateway', config.logLevel);
  const telemetry = await startTelemetry({ service: 'gateway', metricsRoute: true });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const registry = new Registry(join(config.dataDir, 'registry.db'));
  const tokenFile = ensureAdminKey(registry, config.dataDir, config.adminToken);
  if (tokenFile) log.info({ file: tokenFile }, 'generated the admin token');
  const store = await ImageStore.open(config.storeDir);
  const messaging = await Messaging.connect(config.natsUrl, config.natsAuth, log);
  const app = await build({ config, registry, store, messaging, log, serveMetrics: telemetry.serveMetrics });
  app.addHook('onClose', async () => {
    await messaging.close();
    registry.close();
  });
  const address = await app.listen({ host: config.host, port: config.port });
  log.info({ address }, 'gateway listening');
  stopOnSignals(async () => {
    await app.close();
    await telemetry.shutdown();
  }, log);
}

main().catch((err) => {
  console.error(`skiff-gateway: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
