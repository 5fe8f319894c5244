import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ once before the suite, because end-to-end and network-namespace tests start the
 * real compiled apps and helper processes. Set GROUPSEC_SKIP_BUILD=1 to reuse an existing dist/
 * while iterating on unit tests.
 */
export default function setup(): void {
  if (process.env.GROUPSEC_SKIP_BUILD === '1') return;
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
}
