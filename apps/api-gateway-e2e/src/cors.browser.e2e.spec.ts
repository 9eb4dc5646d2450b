import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import {
  type GatewayProcess,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { CHROMIUM, CHROMIUM_ARGS, describeWith } from './real-deps';

/** A site: one empty page on its own origin, as a browser app would be served. */
async function startSite(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>site</title>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface FetchOutcome {
  ok: boolean;
  status?: number;
  body?: { method: string; url: string };
  error?: string;
}

function credentialedPost(page: Page, url: string): Promise<FetchOutcome> {
  return page.evaluate(async (target) => {
    try {
      const res = await fetch(target, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', 'x-client': 'browser' },
        body: '{"hello":"gateway"}',
      });
      return { ok: true, status: res.status, body: (await res.json()) as FetchOutcome['body'] };
    } catch (err) {
      return { ok: false, error: String(err) };
    }
  }, url);
}

describeWith(CHROMIUM, 'CORS in a real browser (headless Chromium)', () => {
  let stub: StubUpstream;
  let allowed: { origin: string; server: Server };
  let other: { origin: string; server: Server };
  let gateway: GatewayProcess;
  let browser: Browser;

  beforeAll(async () => {
    [stub, allowed, other] = await Promise.all([
      startStubUpstream({ name: 'auth' }),
      startSite(),
      startSite(),
    ]);
    gateway = await startGateway({
      AUTH_SERVICE_URL: stub.url,
      KIRA_SERVICE_URL: stub.url,
      CORS_ORIGIN: allowed.origin,
      CORS_CREDENTIALS: 'true',
      COMPRESSION: 'true',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await stub?.close();
    allowed?.server.close();
    other?.server.close();
  });

  async function pageOn(origin: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    return page;
  }

  it('lets the allowed origin make a credentialed, preflighted request, with one Allow-Origin', async () => {
    const page = await pageOn(allowed.origin);
    const responses: Promise<string[]>[] = [];
    page.on('response', (res) => {
      if (res.url().startsWith(gateway.url)) {
        responses.push(
          res
            .headersArray()
            .then((headers) =>
              headers
                .filter((h) => h.name.toLowerCase() === 'access-control-allow-origin')
                .map((h) => h.value),
            ),
        );
      }
    });
    // The upstream sets its own Allow-Origin too: two would make the browser refuse the answer.
    const outcome = await credentialedPost(
      page,
      `${gateway.url}/api/auth/profile?header=access-control-allow-origin:*`,
    );
    expect(outcome).toEqual({
      ok: true,
      status: 200,
      body: expect.objectContaining({
        method: 'POST',
        url: '/api/auth/profile?header=access-control-allow-origin:*',
      }),
    });
    const allowOrigins = await Promise.all(responses);
    expect(allowOrigins.length).toBeGreaterThanOrEqual(1);
    for (const values of allowOrigins) expect(values).toEqual([allowed.origin]);
    // The preflight was the gateway's to answer: the upstream saw only the POST.
    expect(
      stub.requests.filter((r) => r.url.startsWith('/api/auth/profile')).map((r) => r.method),
    ).toEqual(['POST']);
    await page.close();
  });

  it('is blocked by the browser from an origin that is not listed', async () => {
    const page = await pageOn(other.origin);
    const outcome = await credentialedPost(page, `${gateway.url}/api/auth/profile`);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/TypeError/);
    await page.close();
  });

  it('receives server-sent events through the gateway as they are sent, compression on', async () => {
    const page = await pageOn(allowed.origin);
    const arrivals = await page.evaluate(
      (url) =>
        new Promise<{ data: string; at: number }[]>((resolve, reject) => {
          const started = performance.now();
          const seen: { data: string; at: number }[] = [];
          const source = new EventSource(url, { withCredentials: true });
          source.onmessage = (event) => {
            seen.push({ data: event.data, at: performance.now() - started });
            if (seen.length === 3) {
              source.close();
              resolve(seen);
            }
          };
          source.onerror = () => {
            source.close();
            reject(new Error(`EventSource failed after ${seen.length} events`));
          };
        }),
      `${gateway.url}/api/kira/sse?count=3&intervalMs=400`,
    );
    expect(arrivals.map((a) => JSON.parse(a.data))).toEqual([
      { i: 0, service: 'auth' },
      { i: 1, service: 'auth' },
      { i: 2, service: 'auth' },
    ]);
    expect(arrivals[1].at - arrivals[0].at).toBeGreaterThan(250);
    expect(arrivals[2].at - arrivals[1].at).toBeGreaterThan(250);
    await page.close();
  });
});
