export {
  type Exchange,
  type ExchangeEndpoint,
  type ExchangeHooks,
  moveExchange,
  openExchange,
  refuseRequest,
} from './lib/exchange';
export { forward } from './lib/forward';
export { UPSTREAM_FAILURES, type UpstreamFailure } from './lib/upstream-errors';
export { UpstreamInstance } from './lib/upstream-instance';
export { UpstreamService } from './lib/upstream-service';
