export * from './protocol.js';
export * from './redis-keys.js';
export * from './services.js';
