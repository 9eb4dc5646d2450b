import type { ServerResponse } from 'node:http';
import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
  NotFoundException,
} from '@nestjs/common';
import { resolveRequestId } from '@helix/gateway-edge';
import { sendError } from '@helix/gateway-edge';

/**
 * Gives the answers of Nest's own routes the contract's JSON error body. Nest's 404 text
 * ("Cannot GET /path") is replaced, so no raw input is echoed back.
 */
@Catch()
export class GatewayExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(GatewayExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<ServerResponse>();
    const requestId = resolveRequestId(res.getHeader('x-request-id') as string | undefined);
    if (exception instanceof NotFoundException) {
      sendError(res, 404, 'No route matches this path', requestId);
    } else if (exception instanceof HttpException) {
      const status = exception.getStatus();
      sendError(res, status, exception.message, requestId);
    } else {
      this.logger.error(`unhandled error requestId=${requestId}`, (exception as Error)?.stack);
      sendError(res, 500, 'Internal gateway error', requestId);
    }
  }
}
