export * from './protocol.js';
export * from './redis-keys.js';
