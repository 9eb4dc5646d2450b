import { Injectable } from '@nestjs/common';

/**
 * Whether the gateway is draining on its way out. `/health` reports it, and every response
 * from then on asks its client to close the connection.
 */
@Injectable()
export class GatewayLifecycle {
  draining = false;
}
