import { Module } from '@nestjs/common';
import { GcksKeysService } from '../keys/gcks-keys.service.js';
import { KeysController } from '../keys/keys.controller.js';
import { RekeyController } from '../rekey/rekey.controller.js';
import { realTimers } from '../rekey/rekey-sender.js';
import { REKEY_TIMERS, RegistrationService } from './registration.service.js';

/** G-IKEv2 in the GCKS: key material, the registration responder, rekeys (RFC 9838). */
@Module({
  controllers: [KeysController, RekeyController],
  providers: [GcksKeysService, RegistrationService, { provide: REKEY_TIMERS, useValue: realTimers }],
  exports: [GcksKeysService, RegistrationService],
})
export class RegistrationModule {}
