/**
 * The child's side of the namespace tests' JSON-lines protocol (the parent's side is `JsonLines`
 * in netns.ts): one JSON object a line on stdout; requests a line on stdin, answered in order,
 * each with one reply carrying its id: {id, ok:true, ...result} or {id, error}.
 */
import { createInterface } from 'node:readline';

/** Writes one JSON line to stdout. */
export const printJson = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/**
 * Answers every stdin line with `handle`, one request at a time in arrival order. A line that is
 * not JSON gets {error:'bad json'}; a handler that throws gets {id, error: message}.
 */
export function serveJsonLines<R extends { id?: number }>(handle: (req: R) => object | Promise<object>): void {
  let chain = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (line) => {
    chain = chain.then(async () => {
      let req: R;
      try {
        req = JSON.parse(line) as R;
      } catch {
        printJson({ error: 'bad json' });
        return;
      }
      try {
        printJson({ id: req.id, ok: true, ...(await handle(req)) });
      } catch (err) {
        printJson({ id: req.id, error: (err as Error).message });
      }
    });
  });
}
