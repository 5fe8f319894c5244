import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.guard.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly ds: DataSource) {}

  /** Unauthenticated liveness: the process answers and the database responds. */
  @Public()
  @Get()
  async health(): Promise<{ status: 'ok' }> {
    await this.ds.query('SELECT 1');
    return { status: 'ok' };
  }
}
