import {
  DEFAULT_DEMO_HOST,
  DEFAULT_DEMO_SERVICES,
  DemoConfigError,
  readDemoConfig,
} from './demo-services.config';

describe('readDemoConfig', () => {
  it('starts the seven services on their default ports of 127.0.0.1 by default', () => {
    expect(readDemoConfig({})).toEqual({
      host: '127.0.0.1',
      services: [
        { name: 'auth', port: 3001 },
        { name: 'tenant', port: 3002 },
        { name: 'admin', port: 3003 },
        { name: 'file', port: 3004 },
        { name: 'kira', port: 3010 },
        { name: 'vera', port: 3011 },
        { name: 'cleverscreen', port: 3012 },
      ],
    });
    expect(DEFAULT_DEMO_HOST).toBe('127.0.0.1');
    expect(DEFAULT_DEMO_SERVICES).toHaveLength(7);
  });

  it('takes the host from DEMO_HOST', () => {
    expect(readDemoConfig({ DEMO_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(readDemoConfig({ DEMO_HOST: ' ' }).host).toBe('127.0.0.1');
  });

  it('starts only the DEMO_SERVICES entries, a known name without a port on its default', () => {
    expect(readDemoConfig({ DEMO_SERVICES: 'auth=0, kira ,extra=4000' }).services).toEqual([
      { name: 'auth', port: 0 },
      { name: 'kira', port: 3010 },
      { name: 'extra', port: 4000 },
    ]);
  });

  it.each([
    ['auth=70000', 'auth=70000'],
    ['auth=-1', 'auth=-1'],
    ['extra', 'extra'],
    ['auth,', ''],
    ['Auth=1', 'Auth=1'],
  ])('rejects DEMO_SERVICES=%s and names the entry', (value, entry) => {
    expect(() => readDemoConfig({ DEMO_SERVICES: value })).toThrow(
      new DemoConfigError(
        `Invalid DEMO_SERVICES entry "${entry}": expected name=port with a port from 0 to 65535 ` +
          '(the port may be left out for auth, tenant, admin, file, kira, vera, cleverscreen)',
      ),
    );
  });

  it('rejects a service listed twice', () => {
    expect(() => readDemoConfig({ DEMO_SERVICES: 'auth=0,auth=1' })).toThrow(
      'Invalid DEMO_SERVICES: service "auth" is listed twice',
    );
  });
});
