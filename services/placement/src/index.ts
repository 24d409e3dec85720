export * from './placement.js';
export * from './min-instances.js';
export * from './node-directory.js';
