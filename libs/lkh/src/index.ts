// Barrel of @app/lkh: import this library only through '@app/lkh'.
export * from './constants.js';
export * from './errors.js';
export * from './random.js';
export * from './layout.js';
export * from './rekey.js';
export * from './tree.js';
export * from './wrap-engine.js';
export * from './member-keys.js';
export * from './store.js';
