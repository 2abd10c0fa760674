export * from './connection.js';
export * from './object-files.js';
