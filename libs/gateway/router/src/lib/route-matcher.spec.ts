import { createRouteMatcher } from './route-matcher';

const routes = [
  { prefix: '/api/auth', name: 'auth' },
  { prefix: '/api/files', name: 'files' },
  { prefix: '/api/files/public', name: 'public' },
];
const match = createRouteMatcher(routes);

describe('createRouteMatcher', () => {
  it.each([
    ['/api/auth', 'auth'],
    ['/api/auth/', 'auth'],
    ['/api/auth/login', 'auth'],
    ['/api/files/a/b', 'files'],
    ['/api/files/public', 'public'],
    ['/api/files/public/x', 'public'],
    ['/api/files/publicx', 'files'],
  ])('routes %s to %s', (path, name) => {
    expect(match(path)?.name).toBe(name);
  });

  it.each(['/api/authx', '/api/aut', '/api', '/', '', '/API/auth', '/x/api/auth'])(
    'matches nothing for %j (segment boundary, case-sensitive)',
    (path) => {
      expect(match(path)).toBeUndefined();
    },
  );

  it('does not depend on the order of the table', () => {
    const reversed = createRouteMatcher([...routes].reverse());
    expect(reversed('/api/files/public/x')?.name).toBe('public');
  });
});
