export * from './streams.js';
export * from './records.js';
export * from './queue.js';
export * from './dead-letters.js';
export * from './retry.js';
export * from './triggers.js';
export * from './schedule.js';
export * from './last-ticks.js';
