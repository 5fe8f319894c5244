import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditController } from './audit/audit.controller.js';
import { AuthGuard } from './auth/auth.guard.js';
import type { GcksConfig } from './config/gcks-config.js';
import { CoreModule, type CoreDeps } from './core.module.js';
import { dataSourceOptions } from './database/data-source.js';
import { DatabaseMaintenanceModule } from './database/wal-checkpointer.js';
import { GroupsController } from './groups/groups.controller.js';
import { GroupsService } from './groups/groups.service.js';
import { HealthController } from './health/health.controller.js';
import { MembersController } from './members/members.controller.js';
import { MembersService } from './members/members.service.js';
import { PadRulesController, TrustAnchorsController } from './pad/pad.controller.js';
import { PadService } from './pad/pad.service.js';
import { PoliciesController } from './policies/policies.controller.js';
import { PoliciesService } from './policies/policies.service.js';
import type { MasterKeyService } from './security/master-key.service.js';
import { RegistrationModule } from './registration/registration.module.js';
import { MetricsModule } from './metrics/metrics.controller.js';

@Module({ controllers: [GroupsController], providers: [GroupsService], exports: [GroupsService] })
export class GroupsModule {}

@Module({ controllers: [PoliciesController], providers: [PoliciesService], exports: [PoliciesService] })
export class PoliciesModule {}

@Module({ controllers: [PadRulesController, TrustAnchorsController], providers: [PadService], exports: [PadService] })
export class PadModule {}

@Module({ controllers: [MembersController], providers: [MembersService], exports: [MembersService] })
export class MembersModule {}

@Module({ controllers: [AuditController, HealthController] })
export class OperationsModule {}

/** The GCKS application: database (migrated at boot), domain modules, and the global auth guard. */
@Module({})
export class AppModule {
  static forRoot(config: GcksConfig, masterKey: MasterKeyService, deps: CoreDeps = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config, masterKey, deps),
        TypeOrmModule.forRoot({ ...dataSourceOptions(config.databaseFile), migrationsRun: true }),
        GroupsModule,
        PoliciesModule,
        PadModule,
        MembersModule,
        OperationsModule,
        RegistrationModule,
        MetricsModule,
        DatabaseMaintenanceModule,
      ],
      providers: [{ provide: APP_GUARD, useClass: AuthGuard }],
    };
  }
}
