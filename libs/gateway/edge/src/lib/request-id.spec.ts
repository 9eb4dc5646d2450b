import { resolveRequestId } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('resolveRequestId', () => {
  it.each(['abc', 'A-b_c.9', 'x'.repeat(128)])('keeps the sane token %s', (id) => {
    expect(resolveRequestId(id)).toBe(id);
  });

  it.each([
    undefined,
    '',
    'x'.repeat(129),
    'has space',
    'inject\r\nx-admin: 1',
    '<script>',
    'ünïcode',
  ])('replaces %j with a new UUID (attack: log and header injection)', (id) => {
    expect(resolveRequestId(id)).toMatch(UUID);
  });

  it('replaces a repeated header with a new UUID', () => {
    expect(resolveRequestId(['a', 'b'])).toMatch(UUID);
  });

  it('gives every request its own id', () => {
    expect(resolveRequestId(undefined)).not.toBe(resolveRequestId(undefined));
  });
});
