import { Module } from '@nestjs/common';
import { EdgePolicies } from './edge-policies';

@Module({ providers: [EdgePolicies], exports: [EdgePolicies] })
export class EdgeModule {}
