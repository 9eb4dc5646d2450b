import { Module } from '@nestjs/common';
import { BodyGuard } from './body-guard';
import { EdgePolicies } from './edge-policies';

@Module({ providers: [EdgePolicies, BodyGuard], exports: [EdgePolicies, BodyGuard] })
export class EdgeModule {}
