import { Injectable, Logger, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { DomainError, ErrorCode } from '../common/domain-error.js';
import type { AuthenticatedRequest } from '../common/request-context.js';
import { verifyAdminToken } from './admin-token.js';

const PUBLIC_KEY = 'groupsec:public';
/** Marks a route that needs no admin credential (only `/health`). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

/** Global guard: every route but `@Public()` ones needs `Authorization: Bearer <admin token>`. */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly reflector: Reflector,
    private readonly ds: DataSource,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, [ctx.getHandler(), ctx.getClass()])) return true;
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    const remoteAddress = req.socket?.remoteAddress ?? null;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(header.trim()) : null;
    const id = m ? await verifyAdminToken(this.ds, m[1]) : null;
    if (!id) {
      // Never log the presented value: a mistyped token is often one character from the real one.
      this.logger.warn(`401 ${req.method} ${req.originalUrl} from ${remoteAddress ?? '?'}: ${header ? 'wrong' : 'missing'} admin token`);
      throw new DomainError(ErrorCode.UNAUTHENTICATED, 'a valid admin bearer token is required');
    }
    req.actor = { actor: `admin:${id}`, remoteAddress };
    return true;
  }
}
