export * from './env.js';
export * from './logger.js';
export * from './log-file.js';
export * from './shutdown.js';
export * from './nats-connect.js';
export * from './until-it-works.js';
