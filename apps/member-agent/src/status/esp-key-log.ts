/**
 * Debugging aid, off by default (config `debug.espKeyLog`): every SA the agent installs is
 * appended to a file as one record of Wireshark's `esp_sa` UAT (the format of the `esp_sa` file
 * in a Wireshark profile, and of `tshark -o uat:esp_sa:<record>`), as strongSwan's save-keys
 * plugin does, so that a capture of the group's ESP can be opened with tshark or Wireshark.
 *
 * Whoever reads this file can decrypt the group's traffic: it is created with mode 0600 and the
 * agent logs a warning at start while the option is set. Nothing else in the agent writes key
 * bytes anywhere.
 */
import { appendFileSync, chmodSync } from 'node:fs';
import type { DatapathApi, InstallSaOptions, SaConfig } from '@app/datapath';

/** Wireshark's names for the transforms (epan/dissectors/packet-ipsec.c, esp_encryption_type_vals). */
const ENCRYPTION_NAME: Record<SaConfig['transform']['kind'], string> = {
  'aes-gcm-16': 'AES-GCM with 16 octet ICV [RFC4106]',
  'aes-cbc-hmac-sha256': 'AES-CBC [RFC3602]',
};
const INTEGRITY_NAME: Record<SaConfig['transform']['kind'], string> = {
  'aes-gcm-16': 'NULL',
  'aes-cbc-hmac-sha256': 'HMAC-SHA-256-128 [RFC4868]',
};

const hexOf = (b: Uint8Array | undefined) => (b === undefined ? '' : `0x${Buffer.from(b).toString('hex')}`);

/**
 * One `esp_sa` record: protocol, source ('*' for an SA of any source), destination, SPI,
 * encryption algorithm and key (GCM: key || salt, RFC 4106 §8.1), authentication algorithm and key.
 */
export function espSaRecord(sa: SaConfig): string {
  const v6 = sa.destination.includes(':');
  const fields = [
    v6 ? 'IPv6' : 'IPv4',
    sa.source ?? '*',
    sa.destination,
    `0x${sa.spi.toString(16).padStart(8, '0')}`,
    ENCRYPTION_NAME[sa.transform.kind],
    hexOf(sa.encryptionKey),
    INTEGRITY_NAME[sa.transform.kind],
    hexOf(sa.integrityKey),
  ];
  return fields.map((f) => `"${f}"`).join(',');
}

/** Appends records to `path` (created 0600). A write that fails is reported once, never thrown. */
export class EspKeyLog {
  written = 0;
  failed = 0;

  constructor(
    readonly path: string,
    private readonly onError: (message: string) => void,
  ) {}

  record(sa: SaConfig): void {
    try {
      appendFileSync(this.path, `${espSaRecord(sa)}\n`, { mode: 0o600 });
      if (this.written === 0) chmodSync(this.path, 0o600);
      this.written++;
    } catch (e) {
      if (this.failed++ === 0) this.onError((e as Error).message);
    }
  }

  /** The datapath API with every installSa recorded here first. */
  wrap(datapath: DatapathApi): DatapathApi {
    return {
      installPolicy: (entries) => datapath.installPolicy(entries),
      installSa: (sa: SaConfig, options?: InstallSaOptions) => {
        datapath.installSa(sa, options);
        this.record(sa);
      },
      retireSa: (spi, options) => datapath.retireSa(spi, options),
      deleteSa: (spi) => datapath.deleteSa(spi),
      stats: () => datapath.stats(),
      onRegistrationNeeded: (h) => datapath.onRegistrationNeeded(h),
      onSoftExpire: (h) => datapath.onSoftExpire(h),
      onHardExpire: (h) => datapath.onHardExpire(h),
      onUnknownSpi: (h) => datapath.onUnknownSpi(h),
      onAudit: (h) => datapath.onAudit(h),
      onIke: (h) => datapath.onIke(h),
    };
  }
}
