export { WorkerAgent } from './agent.js';
export { loadConfig, type WorkerConfig } from './config.js';
export { runtimeSpec, processArgs, processEnv, invocationEnv } from './bundle.js';
export * from './stream/index.js';
export { defaultSeccompProfile } from './seccomp.js';
