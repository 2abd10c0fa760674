export * from './nats.js';
export * from './object-files.js';
export * from './protocol.js';
export * from './redis-keys.js';
