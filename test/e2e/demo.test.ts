import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * `npm run demo` as a user runs it (dist/ is built by the global setup): the compiled GCKS and
 * three compiled member agents as child processes, no root. It must exit 0, and its report must
 * show the figures it judged by: nothing lost or duplicated for bob, nothing for carol after her
 * eviction took effect, and every agent's SA timeline including a rollover.
 */
const DEMO = fileURLToPath(new URL('../../dist/apps/member-agent/src/demo/demo.js', import.meta.url));

describe('npm run demo', () => {
  it('runs the whole system on loopback and reports success', () => {
    expect(existsSync(DEMO), 'dist/ must be built (global setup)').toBe(true);
    const r = spawnSync(process.execPath, [DEMO], { encoding: 'utf8', timeout: 120_000 });
    const out = r.stdout;
    expect(r.status, `${out}\n${r.stderr}`).toBe(0);
    expect(out).toMatch(/all three agents registered/);
    expect(out).toMatch(/^bob +received +(\d+) +unique +\1 +duplicates 0 +lost 0$/m);
    expect(out).toMatch(/^carol .* lost 0 +after eviction\+switch 0 \(state: excluded\)$/m);
    const sent = Number(/sent (\d+) messages/.exec(out)![1]);
    const bob = Number(/^bob +received +(\d+)/m.exec(out)![1]);
    expect(bob).toBe(sent);
    expect(out).toMatch(/installed \(rekey\)[\s\S]*retired +\(superseded\)[\s\S]*activated \(rekey\)[\s\S]*deleted +\(superseded\)/);
    expect(out).toMatch(/bob's agent stopped \(SIGTERM, exit 0\); the GCKS lists bob as "left"/);
    expect(out).toMatch(/GCKS \/metrics: members registered 1, left 1, evicted 1/);
    expect(out).toMatch(/^OK: /m);
  }, 150_000);
});
