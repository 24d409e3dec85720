export * from './cgroups.js';
export * from './ports.js';
export * from './nats.js';
export * from './platform.js';
export * from './tools.js';
export * from './held.js';
export * from './metrics.js';
