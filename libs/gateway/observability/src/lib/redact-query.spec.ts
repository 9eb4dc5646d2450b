import { redactQuery } from './redact-query';

const keys = new Set(['token', 'api_key', 'password']);

describe('redactQuery', () => {
  it.each([
    ['/api/auth/x', '/api/auth/x'],
    ['/api/auth/x?page=2', '/api/auth/x?page=2'],
    ['/a?token=abc&page=2', '/a?token=[REDACTED]&page=2'],
    ['/a?TOKEN=abc', '/a?TOKEN=[REDACTED]'],
    ['/a?api%5Fkey=abc', '/a?api%5Fkey=[REDACTED]'],
    ['/a?x=1&password=p%40ss&password=again', '/a?x=1&password=[REDACTED]&password=[REDACTED]'],
    ['/a?token', '/a?token'],
    ['/a?tokenx=1&%zz=2', '/a?tokenx=1&%zz=2'],
  ])('%s → %s', (url, expected) => {
    expect(redactQuery(url, keys)).toBe(expected);
  });
});
