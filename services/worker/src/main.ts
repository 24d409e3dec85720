#!/usr/bin/env node
import { accessSync, constants } from 'node:fs';
import { connectNats, createLogger, stopOnSignals } from '@skiff/service-kit';
import { ImageStore } from '@skiff/image';
import { startTelemetry } from '@skiff/telemetry';
import { WorkerAgent } from './agent.js';
import { loadConfig } from './config.js';
import { claimWorkDir } from './work-dir.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const log = createLogger('worker', config.logLevel).child({ nodeId: config.nodeId });
  // Before the agent: its meters come from the provider registered here.
  const telemetry = await startTelemetry({ service: 'worker', attributes: { 'service.instance.id': config.nodeId } });
  try {
    accessSync(config.runtime, constants.X_OK);
  } catch {
    throw new Error(`container runtime ${config.runtime} is missing or not executable (build it with "npm run build", or set SKIFF_RUNTIME)`);
  }
  // Before anything of the node's is touched: a second worker of the node would remove the
  // first one's containers as leftovers.
  claimWorkDir(config.workDir, config.nodeId);
  const store = await ImageStore.open(config.storeDir);
  const nc = await connectNats({ url: config.natsUrl, name: `skiff-worker-${config.nodeId}`, auth: config.natsAuth, waitOnFirstConnect: true });
  const agent = new WorkerAgent(nc, store, config, log);
  await agent.start();
  log.info({ runtime: config.runtime, slots: config.slots }, 'worker running');
  stopOnSignals(async () => {
    await agent.stop();
    await nc.drain();
    await telemetry.shutdown();
  }, log);
}

main().catch((err) => {
  console.error(`skiff-worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
