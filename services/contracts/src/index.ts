export * from './errors.js';
export * from './subjects.js';
export * from './messages.js';
export * from './settings.js';
export * from './logger.js';
export * from './ids.js';
export * from './placement.js';
export * from './node-directory.js';
