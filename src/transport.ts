import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { EreceiptError } from './errors';
import type { Config } from './config';

/** The part of a fetch Response the identity client reads. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface HttpRequestInit {
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  /** Largest body accepted; a larger one fails the read. */
  maxBodyBytes: number;
}

/** One HTTP exchange, with redirects never followed. Tests pass their own. */
export type HttpTransport = (url: string, init: HttpRequestInit) => Promise<HttpResponse>;

/** Seconds to open the connection, TLS handshake included, out of the whole timeout. */
const CONNECT_SHARE = 1 / 3;

/**
 * The transport for real use: node-fetch 2 over agents that honour `caFile`,
 * `legacyServerConnect` and a connect timeout. node-fetch is loaded on first use,
 * so commands that never reach the network never load it.
 */
export function createTransport(config: Pick<Config, 'caFile' | 'legacyServerConnect' | 'timeoutSeconds'>): HttpTransport {
  const connectMs = Math.max(1000, config.timeoutSeconds * 1000 * CONNECT_SHARE);
  let agents: { http: HttpAgent; https: HttpsAgent } | undefined;
  const pickAgent = (url: URL) => {
    agents ??= createAgents(config, connectMs);
    return url.protocol === 'https:' ? agents.https : agents.http;
  };
  return async (url, init) => {
    const { default: fetch } = await import('node-fetch');
    return fetch(url, {
      method: init.method,
      // Uncompressed answers are asked for, so zlib stays unloaded; one compressed
      // anyway (a proxy, a misconfigured server) is still read.
      headers: { 'accept-encoding': 'identity', ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
      signal: init.signal as never,
      redirect: 'manual',
      size: init.maxBodyBytes,
      agent: pickAgent,
      compress: true,
    });
  };
}

/**
 * The HTTP and HTTPS agents the transport uses; exported for tests of their TLS
 * options. The TLS stack is loaded only when an https:// address needs it.
 */
export function createAgents(config: Pick<Config, 'caFile' | 'legacyServerConnect'>, connectMs: number) {
  let https: HttpsAgent | undefined;
  return {
    http: withConnectTimeout(new HttpAgent(), connectMs, 'connect'),
    get https(): HttpsAgent {
      return (https ??= createHttpsAgent(config, connectMs));
    },
  };
}

function createHttpsAgent(config: Pick<Config, 'caFile' | 'legacyServerConnect'>, connectMs: number): HttpsAgent {
  const { Agent } = require('node:https') as typeof import('node:https');
  const { rootCertificates } = require('node:tls') as typeof import('node:tls');
  const cryptoConstants = (require('node:crypto') as typeof import('node:crypto')).constants;
  let ca: string[] | undefined;
  if (config.caFile) {
    try {
      // Added to Node's own roots rather than replacing them, so one configuration
      // serves both the pre-production host (internal ETA root) and production.
      ca = [...rootCertificates, readFileSync(config.caFile, 'utf8')];
    } catch (error) {
      throw new EreceiptError('ERR_CONFIG', `caFile ${config.caFile} cannot be read: fix caFile in the configuration`, { cause: error });
    }
  }
  const agent = new Agent({
    ...(ca ? { ca } : {}),
    // OpenSSL 3 refuses servers without RFC 5746 secure renegotiation, which the
    // real identity host has needed; opt-in only.
    ...(config.legacyServerConnect ? { secureOptions: cryptoConstants.SSL_OP_LEGACY_SERVER_CONNECT } : {}),
  });
  return withConnectTimeout(agent, connectMs, 'secureConnect');
}

function withConnectTimeout<A extends HttpAgent>(agent: A, ms: number, readyEvent: 'connect' | 'secureConnect'): A {
  const create = (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection.bind(agent);
  (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    const timer = setTimeout(() => {
      const error = Object.assign(new Error(`connection not established within ${Math.round(ms / 1000)} s`), { code: 'ECONNECT_TIMEOUT' });
      socket.destroy(error);
    }, ms);
    socket.once(readyEvent, () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  };
  return agent;
}
