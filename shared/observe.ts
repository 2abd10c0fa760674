/**
 * Observability for long-running processes: structured JSON logs (pino) on
 * stderr, and a Prometheus /metrics endpoint (prom-client) with /healthz and
 * /readyz next to it for Kubernetes probes, bound to 127.0.0.1 unless the
 * caller says otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';

export type { Logger };

export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export interface MetricsEndpoint {
  readonly registry: Registry;
  /** http://host:port/metrics, or null when no endpoint was asked for. */
  readonly url: string | null;
  close(): Promise<void>;
}

export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** Why the process cannot take work now, or null when it can; /readyz answers 503 with the reason, or 200. */
export type Readiness = () => string | null;

/**
 * A registry with process metrics, served at /metrics when `port` is given
 * (0: the OS picks). /healthz (a liveness probe) answers 200 while the event
 * loop does and `live` finds nothing wrong; /readyz asks `ready`.
 */
export async function startMetrics(
  port: number | null,
  host = DEFAULT_METRICS_HOST,
  ready: Readiness = () => null,
  live: Readiness = () => null,
): Promise<MetricsEndpoint> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'neurocorr_' });
  if (port === null) return { registry, url: null, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const probe = path === '/healthz' ? live : path === '/readyz' ? ready : null;
    if (probe !== null) {
      const why = probe();
      res.writeHead(why === null ? 200 : 503, { 'content-type': 'text/plain' }).end(`${why ?? (path === '/healthz' ? 'ok' : 'ready')}\n`);
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end('try /metrics, /healthz or /readyz\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    registry,
    url: `http://${shown}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
