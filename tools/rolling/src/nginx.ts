/**
 * nginx in front of the gateways, as a production load balancer would be: round-robin, keep-alive
 * connections to the gateways, and a retry on the next gateway only when a request could not be
 * passed at all (`error`: refused, or reset before any response byte). No retry on timeouts or on
 * 5xx, so a gateway answering badly during its drain shows up as a failure instead of being hidden.
 */
export function nginxConfig(dir: string, listenPort: number, gatewayPorts: number[]): string {
  const servers = gatewayPorts
    .map((port) => `    server 127.0.0.1:${port} max_fails=1 fail_timeout=2s;`)
    .join('\n');
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  # nginx closes a client connection after 1,000 requests by default; autocannon, which has its
  # next request on the way, would see that as ECONNRESET: a harness artefact, not a lost request.
  keepalive_requests 10000000;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream gateways {
${servers}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout 1s;
      proxy_next_upstream error;
      proxy_next_upstream_tries 2;
    }
  }
}
`;
}
