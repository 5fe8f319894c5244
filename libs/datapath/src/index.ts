// Barrel of @app/datapath: import this library only through '@app/datapath'.
export * from './bind.js';
export * from './memory-bind.js';
export * from './types.js';
export * from './errors.js';
export * from './constants.js';
export { inferEsn, ReplayWindow } from './replay-window.js';
export { Gspd } from './gspd.js';
export { createEspCipher, type EspCipher } from './esp-crypto.js';
export type { SendOutcome } from './send.js';
export type { ReceiveOutcome } from './receive.js';
export { Datapath, type DatapathOptions } from './datapath.js';
