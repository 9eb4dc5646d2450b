import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, chromium } from 'playwright-core';
import { type GatewayProcess, httpRequest, startGateway } from '@helix/shared-testing';
import { CHROMIUM, CHROMIUM_ARGS, describeWith } from './real-deps';
import { closedPort, useStub } from './support';
import { tlsEnv, useTestCertificates } from './tls';

const FETCHES = 50;

/** The value of an unlabelled sample in Prometheus text; NaN when it is missing. */
function sample(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}

describeWith(CHROMIUM, 'HTTP/2 in a real browser (headless Chromium over TLS)', () => {
  const pki = useTestCertificates();
  const auth = useStub('auth');
  let gateway: GatewayProcess;
  let metricsUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    const metricsPort = await closedPort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    gateway = await startGateway(
      {
        AUTH_SERVICE_URL: auth.stub.url,
        METRICS_PORT: String(metricsPort),
        ...tlsEnv(pki.certs.leaf),
      },
      { tls: { ca: pki.certs.ca.pem } },
    );
    // The browser trusts the gateway's key itself, as it would a certificate from a public CA;
    // ignoreHTTPSErrors would hide a wrong chain or name as well.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        ...CHROMIUM_ARGS,
        `--ignore-certificate-errors-spki-list=${pki.certs.leaf.spkiSha256}`,
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  async function sessions(): Promise<{ opened: number; open: number }> {
    const text = (await httpRequest(metricsUrl)).body.toString();
    return {
      opened: sample(text, 'helix_gateway_http2_sessions_total'),
      open: sample(text, 'helix_gateway_http2_sessions'),
    };
  }

  it(`loads a page over HTTP/2 from the gateway's origin and makes ${FETCHES} concurrent fetches on that one connection`, async () => {
    const before = await sessions();
    const context = await browser.newContext();
    const page = await context.newPage();
    // A page of the gateway's own origin, through a route; its own CSP lets it fetch from there.
    const response = await page.goto(
      `${gateway.url}/api/auth/page?header=content-type:text/html&header=content-security-policy:default-src%20'self'`,
    );
    expect(response?.status()).toBe(200);

    const outcome = await page.evaluate(async (count) => {
      const results = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          fetch(`/api/auth/delay?ms=300&n=${i}`).then(async (res) => ({
            status: res.status,
            url: ((await res.json()) as { url: string }).url,
          })),
        ),
      );
      // The page's Resource Timing, which this file's (Node's) types do not describe.
      const timing = performance as unknown as {
        getEntriesByType(type: string): { name: string; nextHopProtocol: string }[];
      };
      return {
        results,
        navigation: timing.getEntriesByType('navigation')[0].nextHopProtocol,
        fetches: timing
          .getEntriesByType('resource')
          .filter((entry) => entry.name.includes('/api/auth/delay'))
          .map((entry) => entry.nextHopProtocol),
      };
    }, FETCHES);

    expect(outcome.results).toEqual(
      Array.from({ length: FETCHES }, (_, i) => ({
        status: 200,
        url: `/api/auth/delay?ms=300&n=${i}`,
      })),
    );
    expect(outcome.navigation).toBe('h2');
    expect(outcome.fetches).toEqual(Array(FETCHES).fill('h2'));
    const after = await sessions();
    expect(after.opened - before.opened).toBe(1);
    expect(after.open - before.open).toBe(1);

    await context.close();
    let closed = await sessions();
    for (let i = 0; i < 30 && closed.open !== before.open; i++) {
      await sleep(100);
      closed = await sessions();
    }
    expect(closed.open).toBe(before.open);
  });
});
