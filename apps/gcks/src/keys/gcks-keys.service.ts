import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { IdType } from '@app/codec';
import {
  certificatePem,
  createGroupOwner,
  exportGroupOwnerPublic,
  exportGroupOwnerSecret,
  issueEntityCertificate,
  loadGroupOwner,
  parseCertificate,
  type Certificate,
  type GroupOwner,
  type GroupOwnerSecret,
} from '@app/crypto';
import { CLOCK, RANDOM_BYTES, type Clock, type RandomBytes } from '../common/clock.js';
import { GCKS_CONFIG, type GcksConfig } from '../config/gcks-config.js';
import { SecretBox } from '../security/secret-box.js';
import { rawDb } from './raw-db.js';

/** Default IKE identity (ID_FQDN) of the GCKS when the configuration names none. */
export const DEFAULT_GCKS_IDENTITY = 'gcks.groupsec.local';
const ROW = 'gcks';
const CONTEXT = 'gkm_keys.sealed:gcks';
/** The GCKS's own certificate is re-issued when it has less than this left. */
const GCKS_CERT_DAYS = 825;

/** Public parts, downloadable from the console and `/api/v1/keys/...`. */
export interface GcksPublicKeys {
  groupOwnerKeyPem: string;
  ownerKeyId: string;
  caCertificatePem: string;
  gcksCertificatePem: string;
  gcksIdentity: string;
}

interface SealedKeys {
  owner: GroupOwnerSecret;
  gcksKeyPem: string;
  gcksCertificate: string; // DER, hex
  gcksIdentity: string;
}

/**
 * The GCKS's key material, created on first start (libs/crypto group-owner): the Group Owner's
 * policy-token signing key, the group CA (issues GM and GCKS certificates), and the GCKS's own IKE
 * key and certificate, which also signs GSA_REKEY (RFC 9838 §2.4.1.1). Kept in `gkm_keys` sealed
 * under the master key; the clear column holds only the public parts. Never logged.
 */
@Injectable()
export class GcksKeysService implements OnModuleInit {
  private loaded?: {
    owner: GroupOwner;
    gcksKey: KeyObject;
    gcksPublicKey: KeyObject;
    gcksCertificate: Certificate;
    identity: string;
    pub: GcksPublicKeys;
  };

  constructor(
    private readonly ds: DataSource,
    private readonly secrets: SecretBox,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(RANDOM_BYTES) private readonly random: RandomBytes,
    @Inject(GCKS_CONFIG) private readonly config: GcksConfig,
  ) {}

  onModuleInit(): void {
    this.load();
  }

  /** Loads the keys, creating them (once, in one transaction) on first start. */
  load(): void {
    if (this.loaded) return;
    const db = rawDb(this.ds);
    const row = db.prepare(`SELECT "sealed" FROM "gkm_keys" WHERE "name" = ?`).get(ROW) as { sealed: string } | undefined;
    let s: SealedKeys;
    if (row) {
      s = JSON.parse(this.secrets.open(row.sealed, CONTEXT).toString('utf8')) as SealedKeys;
    } else {
      const now = this.clock.now();
      const identity = (this.config as GcksConfig & { gcksIdentity?: string }).gcksIdentity ?? DEFAULT_GCKS_IDENTITY;
      const owner = createGroupOwner({ groupName: 'GroupSec', organization: 'GroupSec', now, randomBytes: this.random });
      const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const der = issueEntityCertificate(owner, {
        identity: { idType: IdType.ID_FQDN, value: identity },
        publicKey: kp.publicKey,
        now,
        validityDays: GCKS_CERT_DAYS,
        randomBytes: this.random,
      });
      s = {
        owner: exportGroupOwnerSecret(owner),
        gcksKeyPem: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        gcksCertificate: Buffer.from(der).toString('hex'),
        gcksIdentity: identity,
      };
      const pub = this.publicOf(owner, der, identity);
      db.prepare(`INSERT INTO "gkm_keys" ("name", "sealed", "publicJson", "createdAt") VALUES (?, ?, ?, ?)`).run(
        ROW,
        this.secrets.seal(Buffer.from(JSON.stringify(s), 'utf8'), CONTEXT),
        JSON.stringify(pub),
        now.toISOString(),
      );
    }
    const owner = loadGroupOwner(s.owner);
    const gcksKey = createPrivateKey(s.gcksKeyPem);
    const der = new Uint8Array(Buffer.from(s.gcksCertificate, 'hex'));
    this.loaded = {
      owner,
      gcksKey,
      gcksPublicKey: createPublicKey(gcksKey),
      gcksCertificate: parseCertificate(der),
      identity: s.gcksIdentity,
      pub: this.publicOf(owner, der, s.gcksIdentity),
    };
  }

  private publicOf(owner: GroupOwner, gcksDer: Uint8Array, identity: string): GcksPublicKeys {
    const p = exportGroupOwnerPublic(owner);
    return {
      groupOwnerKeyPem: p.signingKeyPem,
      ownerKeyId: p.ownerKeyId,
      caCertificatePem: p.caCertificatePem,
      gcksCertificatePem: certificatePem(gcksDer),
      gcksIdentity: identity,
    };
  }

  private get k() {
    this.load();
    return this.loaded!;
  }

  get owner(): GroupOwner {
    return this.k.owner;
  }
  get gcksKey(): KeyObject {
    return this.k.gcksKey;
  }
  get gcksPublicKey(): KeyObject {
    return this.k.gcksPublicKey;
  }
  get gcksCertificate(): Certificate {
    return this.k.gcksCertificate;
  }
  get gcksIdentity(): string {
    return this.k.identity;
  }
  get publicKeys(): GcksPublicKeys {
    return this.k.pub;
  }

  /** Issues a certificate from the group CA (for members, tests and the load generator). */
  issueMemberCertificate(identity: { idType: number; value: string }, publicKey: KeyObject, validityDays = 365): Uint8Array {
    return issueEntityCertificate(this.owner, { identity, publicKey, now: this.clock.now(), validityDays, randomBytes: this.random });
  }
}
