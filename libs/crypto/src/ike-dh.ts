/**
 * IKEv2 key exchange: ECP-256 (group 19, RFC 5903 §7: public value x | y, shared secret x) and
 * Curve25519 (group 31, RFC 8031 §2: 32-octet public value, all-zero result refused).
 * Private keys come from injected randomness.
 */
import { createECDH, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { KeGroup } from '@app/codec';
import { CryptoError, type RandomBytes } from './errors.js';

export interface KeyExchange {
  readonly group: number;
  /** The public value as carried in the KE payload. */
  readonly publicValue: Uint8Array;
  /** g^ir from the peer's KE payload data; throws CryptoError BAD_KEY on an invalid value. */
  computeSecret(peerPublic: Uint8Array): Uint8Array;
}

export const SUPPORTED_KE_GROUPS: readonly number[] = [KeGroup.ECP_256, KeGroup.CURVE25519];

/** Public value length for a group (RFC 5903 §7, RFC 8031 §2). */
export function keyExchangeLength(group: number): number {
  if (group === KeGroup.ECP_256) return 64;
  if (group === KeGroup.CURVE25519) return 32;
  throw new CryptoError('UNSUPPORTED', `key exchange method ${group}`);
}

/** A fresh key exchange for `group`, optionally from a fixed private key (test vectors). */
export function createKeyExchange(group: number, random: RandomBytes, privateKey?: Uint8Array): KeyExchange {
  if (group === KeGroup.ECP_256) {
    const ecdh = createECDH('prime256v1');
    for (let tries = 0; ; tries++) {
      try {
        ecdh.setPrivateKey(privateKey ?? random(32));
        break;
      } catch {
        if (privateKey || tries > 8) throw new CryptoError('BAD_KEY', 'ECP-256 private key');
      }
    }
    const pub = new Uint8Array(ecdh.getPublicKey()).subarray(1);
    return {
      group,
      publicValue: pub,
      computeSecret(peer) {
        if (peer.length !== 64) throw new CryptoError('BAD_KEY', `ECP-256 public value of ${peer.length} octets`);
        const point = new Uint8Array(65);
        point[0] = 4;
        point.set(peer, 1);
        try {
          return new Uint8Array(ecdh.computeSecret(point));
        } catch {
          throw new CryptoError('BAD_KEY', 'ECP-256 public value not on the curve');
        }
      },
    };
  }
  if (group === KeGroup.CURVE25519) {
    const d = privateKey ?? random(32);
    if (d.length !== 32) throw new CryptoError('BAD_KEY', 'X25519 private key length');
    // RFC 8410 DER wrappers: PKCS#8 for the private scalar, SPKI for public values.
    const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, d]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
    const pub = new Uint8Array(spki.subarray(spki.length - 32));
    return {
      group,
      publicValue: pub,
      computeSecret(peer) {
        if (peer.length !== 32) throw new CryptoError('BAD_KEY', `Curve25519 public value of ${peer.length} octets`);
        let secret: Uint8Array;
        try {
          const pk = createPublicKey({ key: Buffer.concat([X25519_SPKI, peer]), format: 'der', type: 'spki' });
          secret = new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pk }));
        } catch {
          throw new CryptoError('BAD_KEY', 'Curve25519 public value');
        }
        if (secret.every((b) => b === 0)) throw new CryptoError('BAD_KEY', 'Curve25519 all-zero shared secret');
        return secret;
      },
    };
  }
  throw new CryptoError('UNSUPPORTED', `key exchange method ${group}`);
}

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
