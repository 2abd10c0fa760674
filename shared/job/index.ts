export * from './checkpoint.js';
export * from './chunks.js';
export * from './executor.js';
export * from './plan.js';
export * from './progress.js';
export * from './report.js';
export * from './schedule.js';
export * from './sources.js';
