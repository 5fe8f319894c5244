import { randomBytes } from 'node:crypto';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import { randomPool } from '@app/crypto';
import { AuditService } from './audit/audit.service.js';
import { CLOCK, RANDOM_BYTES, RANDOM_POOL, systemClock, type Clock, type RandomBytes } from './common/clock.js';
import { GCKS_CONFIG, type GcksConfig } from './config/gcks-config.js';
import { UnitOfWork } from './database/unit-of-work.js';
import { MasterKeyService } from './security/master-key.service.js';
import { SecretBox } from './security/secret-box.js';

export interface CoreDeps {
  readonly clock?: Clock;
  readonly random?: RandomBytes;
}

/** Configuration, clock, randomness, the master key and the write path shared by every domain module. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: GcksConfig, masterKey: MasterKeyService, deps: CoreDeps = {}): DynamicModule {
    const random = deps.random ?? randomBytes;
    return {
      module: CoreModule,
      providers: [
        { provide: GCKS_CONFIG, useValue: config },
        { provide: CLOCK, useValue: deps.clock ?? systemClock },
        { provide: RANDOM_BYTES, useValue: random },
        { provide: RANDOM_POOL, useValue: randomPool(random) },
        { provide: MasterKeyService, useValue: masterKey },
        {
          provide: SecretBox,
          // Sealing (IKE SA records at every registration, secrets on the REST path) takes its 12-octet
          // IVs from 4 KB blocks of the CSPRNG instead of one call each.
          useFactory: (pool: (n: number) => Uint8Array) =>
            new SecretBox(masterKey, (n) => {
              const b = pool(n);
              return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
            }),
          inject: [RANDOM_POOL],
        },
        UnitOfWork,
        AuditService,
      ],
      exports: [GCKS_CONFIG, CLOCK, RANDOM_BYTES, RANDOM_POOL, MasterKeyService, SecretBox, UnitOfWork, AuditService],
    };
  }
}
