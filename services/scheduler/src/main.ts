#!/usr/bin/env node
import { INBOX_PREFIXES } from '@skiff/contracts';
import { connectNats, createLogger, stopOnSignals } from '@skiff/service-kit';
import { startTelemetry } from '@skiff/telemetry';
import { loadConfig } from './config.js';
import { Scheduler } from './scheduler.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const log = createLogger('scheduler', config.logLevel);
  const telemetry = await startTelemetry({ service: 'scheduler' });
  const nc = await connectNats({ url: config.natsUrl, name: 'skiff-scheduler', auth: config.natsAuth, waitOnFirstConnect: true, inboxPrefix: INBOX_PREFIXES.scheduler });
  const scheduler = new Scheduler(nc, config, log);
  scheduler.start();
  log.info({ nats: config.natsUrl }, 'scheduler running');
  stopOnSignals(async () => {
    await scheduler.stop();
    await nc.drain();
    await telemetry.shutdown();
  }, log);
}

main().catch((err) => {
  console.error(`skiff-scheduler: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
