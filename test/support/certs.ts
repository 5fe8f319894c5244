import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp-dir.js';

/** A self-signed ECDSA P-256 certificate made by openssl (an independent tool), as PEM. */
export function makeCertificate(cn: string, ca: boolean): string {
  const dir = tempDir('gcks-cert-');
  try {
    const cert = join(dir.path, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', join(dir.path, 'key.pem'), '-out', cert, '-days', '30', '-subj', `/CN=${cn}`,
        '-addext', `basicConstraints=critical,CA:${ca ? 'TRUE' : 'FALSE'}`,
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(cert, 'utf8');
  } finally {
    dir.remove();
  }
}
