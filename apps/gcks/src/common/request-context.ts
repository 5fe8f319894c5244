import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/** Who made a change and from where; recorded with every audit entry. */
export interface Actor {
  readonly actor: string;
  readonly remoteAddress: string | null;
}

export interface AuthenticatedRequest {
  actor?: Actor;
}

/** The authenticated actor of the current request (set by the auth guard). */
export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor => {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.actor) throw new Error('CurrentActor used on a route without authentication');
  return req.actor;
});
