// Baseline: @fastify/http-proxy with its defaults. Run as a child process; UPSTREAM_URL names
// the upstream.
import httpProxy from '@fastify/http-proxy';
import fastify from 'fastify';

const app = fastify();
await app.register(httpProxy, {
  upstream: process.env['UPSTREAM_URL'] ?? '',
  prefix: '/api/auth',
  rewritePrefix: '/api/auth',
});
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`fastify proxy listening on ${address}\n`);
