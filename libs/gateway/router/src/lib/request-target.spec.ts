import { isRejectedTarget, normalizeRequestTarget } from './request-target';

describe('normalizeRequestTarget', () => {
  it.each([
    ['/api/auth/login?x=1', '/api/auth/login', '/api/auth/login?x=1'],
    [
      '/api/auth/login?next=/../../etc&a=%2e',
      '/api/auth/login',
      '/api/auth/login?next=/../../etc&a=%2e',
    ],
    ['/api/auth/a%20b', '/api/auth/a%20b', '/api/auth/a%20b'],
    ['/api/auth/./login', '/api/auth/login', '/api/auth/login'],
    ['/api/users/../auth/login?q', '/api/auth/login', '/api/auth/login?q'],
    ['/api/auth/x/..', '/api/auth/', '/api/auth/'],
    ['/api/auth/x/.', '/api/auth/x/', '/api/auth/x/'],
    ['/api//auth///login', '/api/auth/login', '/api/auth/login'],
    ['/../../api/auth', '/api/auth', '/api/auth'],
    ['/api/auth/.hidden/..more', '/api/auth/.hidden/..more', '/api/auth/.hidden/..more'],
    ['http://other-host/api/auth/x?y=1', '/api/auth/x', '/api/auth/x?y=1'],
    ['HTTP://other-host:81', '/', '/'],
    ['http://other-host?x', '/', '/?x'],
  ])('%s routes as %s and forwards %s', (raw, path, url) => {
    expect(normalizeRequestTarget(raw)).toEqual({ path, url });
  });

  it('returns the raw URL untouched when it needs no work', () => {
    const raw = '/api/files/report.pdf?download=1&x=%2F';
    expect(normalizeRequestTarget(raw)).toEqual({ path: '/api/files/report.pdf', url: raw });
  });

  it.each([
    ['/api/auth/%2e%2e/users', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/%2E%2E/users', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/..%2fusers', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/%5c..%5cusers', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/%252e%252e/users', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/%00', 'encoded dot, slash, backslash or NUL in path'],
    ['/api/auth/..\\users', 'backslash in path'],
    ['/api/auth/..;/users', 'dot segment with path parameters'],
    ['/api/auth/.;/users', 'dot segment with path parameters'],
    ['//evil.example/api/auth', 'path starts with //'],
    ['/api/auth/%zz', 'malformed percent-encoding in path'],
    ['/api/auth/%', 'malformed percent-encoding in path'],
    ['*', 'request target is not a path'],
    ['other-host:443', 'request target is not a path'],
  ])('rejects %s (%s)', (raw, reason) => {
    const target = normalizeRequestTarget(raw);
    expect(isRejectedTarget(target) && target.rejected).toBe(reason);
  });
});
