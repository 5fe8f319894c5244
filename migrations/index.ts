import { InitialSchema1795356792554 } from './1795356792554-InitialSchema.js';

/**
 * Every migration of the GCKS database, oldest first. Files are named `<epoch-ms>-<PascalName>.ts`
 * and each has a working `down()`; later issues append theirs here.
 */
export const MIGRATIONS = [InitialSchema1795356792554];
