export { WorkerAgent } from './agent.js';
export { loadConfig, type WorkerConfig } from './config.js';
export { runtimeSpec, processArgs, instanceEnv } from './bundle.js';
