import type { IncomingHttpHeaders } from 'node:http';
import { clientResponseHeaders, forwardedRequestHeaders } from './header-policy';

const forwarded = {
  clientIp: '203.0.113.7',
  httpVersion: '1.1',
  encrypted: false,
  requestId: 'req-1',
  upstreamHost: 'auth-service:3001',
};

describe('forwardedRequestHeaders', () => {
  it('drops hop-by-hop fields and those named in Connection, and adds the forwarding fields', () => {
    let headers: IncomingHttpHeaders = {
      host: 'gateway.example.com',
      connection: 'keep-alive, X-Secret, x-other',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      te: 'trailers',
      trailer: 'x-checksum',
      upgrade: 'h2c',
      expect: '100-continue',
      'x-secret': '1',
      'x-other': '2',
      'x-kept': '3',
      authorization: 'Bearer t',
      'content-length': '5',
    };
    headers = forwardedRequestHeaders(headers, forwarded, false);
    expect(headers).toEqual({
      host: 'auth-service:3001',
      trailer: 'x-checksum',
      'x-kept': '3',
      authorization: 'Bearer t',
      'content-length': '5',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gateway.example.com',
      via: '1.1 helix-gateway',
      'x-request-id': 'req-1',
    });
  });

  it('appends to X-Forwarded-For and Via, and replaces client-sent proto and host', () => {
    let headers: IncomingHttpHeaders = {
      host: 'gw:3000',
      'x-forwarded-for': '198.51.100.1, 10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      via: '1.0 cdn',
      'x-request-id': 'client-chosen',
    };
    headers = forwardedRequestHeaders(headers, forwarded, false);
    expect(headers).toEqual({
      host: 'auth-service:3001',
      'x-forwarded-for': '198.51.100.1, 10.0.0.1, 203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gw:3000',
      via: '1.0 cdn, 1.1 helix-gateway',
      'x-request-id': 'req-1',
    });
  });

  it('drops a client X-Forwarded-Host when the request has no Host', () => {
    let headers: IncomingHttpHeaders = { 'x-forwarded-host': 'evil.example' };
    headers = forwardedRequestHeaders(headers, { ...forwarded, httpVersion: '1.0' }, false);
    expect(headers['x-forwarded-host']).toBeUndefined();
    expect(headers.via).toBe('1.0 helix-gateway');
  });

  it('cannot be told by Connection to strip framing or what the gateway adds (attack: connection-header stripping)', () => {
    let headers: IncomingHttpHeaders = {
      host: 'gw',
      connection: 'content-length, x-forwarded-for, x-request-id, via, host, x-forwarded-host',
      'content-length': '3',
    };
    headers = forwardedRequestHeaders(headers, forwarded, false);
    expect(headers).toEqual({
      host: 'auth-service:3001',
      'content-length': '3',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gw',
      via: '1.1 helix-gateway',
      'x-request-id': 'req-1',
    });
  });

  it('keeps a chunked body chunked, whatever codings the client listed', () => {
    let headers: IncomingHttpHeaders = { host: 'gw', 'transfer-encoding': 'gzip, chunked' };
    headers = forwardedRequestHeaders(headers, forwarded, false);
    expect(headers['transfer-encoding']).toBe('chunked');
  });

  it('keeps the upgrade handshake for a WebSocket', () => {
    let headers: IncomingHttpHeaders = {
      host: 'gw',
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
    };
    headers = forwardedRequestHeaders(headers, forwarded, true);
    expect(headers).toMatchObject({
      connection: 'upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
    });
  });
});

describe('forwardedRequestHeaders over HTTP/2', () => {
  it('turns :authority into X-Forwarded-Host, drops every pseudo-header and says https', () => {
    let headers: IncomingHttpHeaders = {
      ':method': 'POST',
      ':path': '/api/auth/login',
      ':scheme': 'https',
      ':authority': 'gateway.example.com',
      'content-type': 'application/json',
      te: 'trailers',
    };
    headers = forwardedRequestHeaders(
      headers,
      { ...forwarded, httpVersion: '2.0', encrypted: true },
      false,
    );
    expect(headers).toEqual({
      host: 'auth-service:3001',
      'content-type': 'application/json',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'gateway.example.com',
      via: '2 helix-gateway',
      'x-request-id': 'req-1',
    });
  });
});

describe('clientResponseHeaders', () => {
  it("replaces the upstream's connection fields with the client's and adds Via and the request id", () => {
    let headers: IncomingHttpHeaders = {
      'content-type': 'application/json',
      connection: 'close, x-upstream-secret',
      'keep-alive': 'timeout=5',
      'x-upstream-secret': 'internal',
      'transfer-encoding': 'chunked',
      'x-request-id': 'something-else',
    };
    headers = clientResponseHeaders(headers, 'keep-alive', 'req-1');
    expect(headers).toEqual({
      'content-type': 'application/json',
      connection: 'keep-alive',
      via: '1.1 helix-gateway',
      'x-request-id': 'req-1',
    });
    headers = clientResponseHeaders(headers, 'close', 'req-1');
    expect(headers.connection).toBe('close');
  });

  it('sends no connection-specific field at all to an HTTP/2 client', () => {
    let headers: IncomingHttpHeaders = {
      'content-type': 'text/plain',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
    };
    headers = clientResponseHeaders(headers, undefined, 'req-2');
    expect(headers).toEqual({
      'content-type': 'text/plain',
      via: '1.1 helix-gateway',
      'x-request-id': 'req-2',
    });
  });
});

describe('the header policies copy, never delete in place', () => {
  it('leaves the client’s header object as it came, for the access log and compression', () => {
    const headers: IncomingHttpHeaders = {
      host: 'gw',
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'user-agent': 'curl/8',
    };
    const before = { ...headers };
    const out = forwardedRequestHeaders(headers, forwarded, false);
    expect(headers).toEqual(before);
    expect(out).not.toHaveProperty('x-hop');
    expect(out['user-agent']).toBe('curl/8');
  });
});
