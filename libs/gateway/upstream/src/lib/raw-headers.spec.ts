import { headersFromRaw } from './raw-headers';

function raw(...fields: string[]): Buffer[] {
  return fields.map((field) => Buffer.from(field, 'latin1'));
}

describe('headersFromRaw', () => {
  it('lower-cases the names and keeps the values as sent', () => {
    expect(headersFromRaw(raw('Content-Type', 'text/plain', 'X-Trace', 'Ab C'))).toEqual({
      'content-type': 'text/plain',
      'x-trace': 'Ab C',
    });
  });

  it('keeps every Set-Cookie apart, as a list', () => {
    expect(headersFromRaw(raw('Set-Cookie', 'a=1', 'set-cookie', 'b=2'))['set-cookie']).toEqual([
      'a=1',
      'b=2',
    ]);
  });

  it('joins a repeated list field with ", " and keeps the first of a single-value one', () => {
    const headers = headersFromRaw(
      raw('Vary', 'Origin', 'Content-Length', '5', 'vary', 'Accept', 'content-length', '7'),
    );
    expect(headers.vary).toBe('Origin, Accept');
    expect(headers['content-length']).toBe('5');
  });

  it('reads latin1 bytes as Node does, and takes strings as they are', () => {
    expect(headersFromRaw([Buffer.from([0x78]), Buffer.from([0xe9])])).toEqual({ x: 'é' });
    expect(headersFromRaw(['X-Name', 'value'])).toEqual({ 'x-name': 'value' });
  });

  it('takes a field named like an Object property as any other (SECURITY: no inherited value leaks)', () => {
    const headers = headersFromRaw(raw('Constructor', 'x', 'toString', 'y', 'valueOf', 'z'));
    expect(headers).toEqual({ constructor: 'x', tostring: 'y', valueof: 'z' });
  });
});
