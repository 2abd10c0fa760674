export * from './protocol.js';
export * from './redis-keys.js';
export * from './services.js';
export * from './spec-check.js';
