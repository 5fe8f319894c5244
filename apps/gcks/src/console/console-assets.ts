import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The console's static files (HTML, JS, CSS) live in `apps/gcks/src/console/static/` and are
 * served as they are, from sources or from dist/ alike: the directory is found relative to the
 * repository root (the nearest folder with a package.json above this module).
 */
export function consoleStaticDir(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'apps', 'gcks', 'src', 'console', 'static');
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot locate the repository root for the console files');
    dir = up;
  }
}
