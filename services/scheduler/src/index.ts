export { Scheduler } from './scheduler.js';
export { loadConfig, type SchedulerConfig } from './config.js';
