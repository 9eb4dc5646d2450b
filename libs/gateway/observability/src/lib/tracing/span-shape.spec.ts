import {
  clientSpanName,
  protocolVersion,
  serverSpanName,
  spanMethod,
  upstreamAddress,
} from './span-shape';

describe('span shape (HTTP semantic conventions)', () => {
  it('keeps the methods HTTP defines and folds any other into _OTHER', () => {
    expect(['GET', 'PATCH', 'OPTIONS', 'CONNECT'].map(spanMethod)).toEqual([
      'GET',
      'PATCH',
      'OPTIONS',
      'CONNECT',
    ]);
    expect(spanMethod('PURGE')).toBe('_OTHER');
    expect(spanMethod('get')).toBe('_OTHER');
    expect(spanMethod(undefined)).toBe('_OTHER');
  });

  it('names SERVER spans <METHOD> <route> and CLIENT spans <METHOD>, HTTP for _OTHER', () => {
    expect(serverSpanName('POST', '/api/auth')).toBe('POST /api/auth');
    expect(serverSpanName('_OTHER', '/api/auth')).toBe('HTTP /api/auth');
    expect(clientSpanName('DELETE')).toBe('DELETE');
    expect(clientSpanName('_OTHER')).toBe('HTTP');
  });

  it('writes HTTP/2 as 2 and keeps 1.1 and 1.0', () => {
    expect(['2.0', '1.1', '1.0'].map(protocolVersion)).toEqual(['2', '1.1', '1.0']);
  });

  it("splits an upstream's Host into server.address and server.port", () => {
    expect(upstreamAddress('auth-service:3001', new URL('http://auth-service:3001'))).toEqual({
      address: 'auth-service',
      port: 3001,
    });
    expect(upstreamAddress('files.internal', new URL('https://files.internal'))).toEqual({
      address: 'files.internal',
      port: 443,
    });
    expect(upstreamAddress('[::1]:8080', new URL('http://[::1]:8080'))).toEqual({
      address: '::1',
      port: 8080,
    });
    // A discovered instance: reached by address, named by the host that resolved to it.
    expect(upstreamAddress('tenant:3002', new URL('http://10.0.0.7:3002'))).toEqual({
      address: 'tenant',
      port: 3002,
    });
    expect(upstreamAddress('plain', new URL('http://plain'))).toEqual({
      address: 'plain',
      port: 80,
    });
  });
});
