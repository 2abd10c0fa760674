export * from './blocking.js';
export * from './tile.js';
