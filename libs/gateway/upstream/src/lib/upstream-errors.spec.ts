import { classifyUpstreamError, UPSTREAM_FAILURES } from './upstream-errors';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

describe('classifyUpstreamError', () => {
  it.each([
    ['ECONNREFUSED', 'refused', 502],
    ['ECONNRESET', 'reset', 502],
    ['EPIPE', 'reset', 502],
    ['ENOTFOUND', 'unresolved', 502],
    ['EAI_AGAIN', 'unresolved', 502],
    ['EHOSTUNREACH', 'unreachable', 502],
    ['ENETUNREACH', 'unreachable', 502],
    ['HPE_INVALID_CONSTANT', 'bad_response', 502],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 'bad_response', 502],
    ['ETIMEDOUT', 'timeout', 504],
    ['ERR_UPSTREAM_UPGRADE_TIMEOUT', 'timeout', 504],
    ['UND_ERR_SOCKET', 'reset', 502],
    ['UND_ERR_CONNECT_TIMEOUT', 'connect_timeout', 504],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'bad_response', 502],
    ['EWHATEVER', 'failed', 502],
  ])('maps %s to %s (%d)', (code, failure, status) => {
    expect(classifyUpstreamError(errno(code))).toBe(failure);
    expect(UPSTREAM_FAILURES[classifyUpstreamError(errno(code))].status).toBe(status);
  });

  it("maps undici's parse error to bad_response, with or without an HPE_ code", () => {
    const parseError = Object.assign(new Error('Invalid response status'), {
      name: 'HTTPParserError',
    });
    expect(classifyUpstreamError(parseError)).toBe('bad_response');
  });

  it('maps an error without a code, or no error at all, to failed', () => {
    expect(classifyUpstreamError(new Error('x'))).toBe('failed');
    expect(classifyUpstreamError(undefined)).toBe('failed');
  });

  it('never names a host or port in a message', () => {
    for (const { message } of Object.values(UPSTREAM_FAILURES)) {
      expect(message).not.toMatch(/\d|:\/\/|localhost/);
    }
  });
});
