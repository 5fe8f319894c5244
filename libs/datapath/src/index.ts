// Barrel of @app/datapath: import this library only through '@app/datapath'.
export * from './bind.js';
export * from './memory-bind.js';
export * from './types.js';
