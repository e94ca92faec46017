import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A readiness check: resolves `true` when ready. A check that resolves `false`, rejects
 * or takes longer than the check timeout counts as failing.
 */
export type ReadinessCheck = () => boolean | Promise<boolean>;

export interface HealthServerOptions {
  /** TCP port; 0 picks a free port, which `port` on the result then reports. */
  port: number;
  /** Loopback address to listen on: `127.0.0.1`, `::1` or `localhost`. */
  host?: string;
  /** Named readiness checks run on every `/readyz` request. */
  checks?: Record<string, ReadinessCheck>;
  /** Time limit for each readiness check, in milliseconds. */
  checkTimeoutMs?: number;
}

export interface HealthServer {
  port: number;
  host: string;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function failingChecks(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<string[]> {
  const names = Object.keys(checks);
  const results = await Promise.all(
    names.map((name) => runCheck(checks[name] as ReadinessCheck, timeoutMs)),
  );
  return names.filter((_name, index) => results[index] !== true);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/**
 * Starts the `/healthz` (the process is up) and `/readyz` (every readiness check passes)
 * endpoints. `/readyz` returns 503 with the names of the failing checks. The server
 * listens on loopback only, because the endpoints are unauthenticated.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(
      `health server host "${host}" is not a loopback address: use 127.0.0.1, ::1 or localhost`,
    );
  }
  const checks = options.checks ?? {};
  const timeoutMs = options.checkTimeoutMs ?? 2_000;

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(response, 405, { status: 'method-not-allowed' });
      return;
    }
    if (path === '/healthz') {
      sendJson(response, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      failingChecks(checks, timeoutMs).then(
        (failing) => {
          if (failing.length === 0) {
            sendJson(response, 200, { status: 'ready' });
          } else {
            sendJson(response, 503, { status: 'not-ready', failing });
          }
        },
        () => sendJson(response, 503, { status: 'not-ready', failing: Object.keys(checks) }),
      );
      return;
    }
    sendJson(response, 404, { status: 'not-found' });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    host,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
