import { Module } from '@nestjs/common';
import { EdgeModule } from '@helix/gateway-edge';
import { DnsDiscovery } from './dns-discovery';
import { GatewayLifecycle } from './gateway-lifecycle';
import { GatewayPipeline } from './gateway-pipeline';
import { UpstreamRegistry } from './upstream-registry';

/** The route table in force and the pipeline that runs every request through it. */
@Module({
  imports: [EdgeModule],
  providers: [GatewayLifecycle, UpstreamRegistry, GatewayPipeline, DnsDiscovery],
  exports: [GatewayLifecycle, UpstreamRegistry, GatewayPipeline, DnsDiscovery],
})
export class RouterModule {}
