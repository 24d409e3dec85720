export * from './errors.js';
export * from './subjects.js';
export * from './messages.js';
export * from './settings.js';
export * from './ids.js';
export * from './nats-access.js';
export * from './destinations.js';
