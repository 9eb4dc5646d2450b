export { createMetricsPortListener } from './lib/metrics-port';
export { type LiveState, StatusBoard } from './lib/status-board';
export { readWorkers } from './lib/status-cluster';
export { StatusSampler } from './lib/status-sampler';
export { StatusModule } from './lib/status.module';
