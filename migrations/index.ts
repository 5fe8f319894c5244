import { InitialSchema1795356792554 } from './1795356792554-InitialSchema.js';
import { LkhTrees1795358165498 } from './1795358165498-LkhTrees.js';
import { GroupKeyManagement1795400000000 } from './1795400000000-GroupKeyManagement.js';

/**
 * Every migration of the GCKS database, oldest first. Files are named `<epoch-ms>-<PascalName>.ts`
 * and each has a working `down()`; later issues append theirs here.
 */
export const MIGRATIONS = [InitialSchema1795356792554, LkhTrees1795358165498, GroupKeyManagement1795400000000];
