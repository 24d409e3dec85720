export { build, type GatewayDeps } from './app.js';
export { loadConfig, type GatewayConfig } from './config.js';
export { Registry } from './registry.js';
export { ensureAdminKey, hashToken } from './auth.js';
export { Messaging } from './messaging.js';
export { Invoker } from './invoker.js';
