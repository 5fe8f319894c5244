import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.guard.js';
import { GcksKeysService } from './gcks-keys.service.js';

export class PublicKeysResponse {
  @ApiProperty({ description: "The Group Owner's policy-token signing key (SPKI PEM): the members' trust anchor" }) groupOwnerKeyPem: string;
  @ApiProperty({ description: 'SHA-256 of the Group Owner key SPKI (hex), as carried in every policy token' }) ownerKeyId: string;
  @ApiProperty({ description: 'The group CA certificate (PEM)' }) caCertificatePem: string;
  @ApiProperty({ description: "The GCKS's IKE certificate (PEM), issued by the group CA" }) gcksCertificatePem: string;
  @ApiProperty() gcksIdentity: string;
}

/** Public parts of the GCKS's key material: what members configure as trust anchors. No secrets. */
@ApiTags('keys')
@Public()
@Controller('api/v1/keys')
export class KeysController {
  constructor(private readonly keys: GcksKeysService) {}

  @Get()
  @ApiOkResponse({ type: PublicKeysResponse })
  all(): PublicKeysResponse {
    return this.keys.publicKeys;
  }

  @Get('group-owner.pem')
  @Header('Content-Type', 'application/x-pem-file')
  groupOwner(): string {
    return this.keys.publicKeys.groupOwnerKeyPem;
  }

  @Get('ca.pem')
  @Header('Content-Type', 'application/x-pem-file')
  ca(): string {
    return this.keys.publicKeys.caCertificatePem;
  }

  @Get('gcks.pem')
  @Header('Content-Type', 'application/x-pem-file')
  gcks(): string {
    return this.keys.publicKeys.gcksCertificatePem;
  }
}
