// Barrel of @app/codec: import this library only through '@app/codec'.
export * from './errors.js';
export * from './cursor.js';
export * from './constants.js';
