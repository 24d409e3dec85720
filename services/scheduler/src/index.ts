export { Scheduler } from './scheduler.js';
export { loadConfig, type SchedulerConfig } from './config.js';
export { LATE_TICK_GRACE_MS } from './schedules.js';
