import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { EreceiptError } from './errors';
import type { Config } from './config';
import type { ProxyRoute } from './proxy';
import { loadTunnel, proxyMaybeSet } from './proxy-env';
import { registerSecretValue } from './secret';

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

/** Errors of a request that went through a proxy say which one. */
export interface ProxiedError {
  proxy?: string;
}

/**
 * The transport for real use: node-fetch 2 over agents that honour `caFile`,
 * `legacyServerConnect` and a connect timeout, through a proxy where one is set
 * (src/proxy.ts). node-fetch is loaded on first use, so commands that never reach
 * the network never load it, and the proxy code only when a proxy is in use.
 */
export function createTransport(config: Pick<Config, 'caFile' | 'legacyServerConnect' | 'timeoutSeconds' | 'proxy'>): HttpTransport {
  const connectMs = Math.max(1000, config.timeoutSeconds * 1000 * CONNECT_SHARE);
  let agents: { http: HttpAgent; https: HttpsAgent } | undefined;
  const pickAgent = (url: URL) => {
    agents ??= createAgents(config, connectMs);
    return url.protocol === 'https:' ? agents.https : agents.http;
  };
  return async (url, init) => {
    const { default: fetch } = await import('node-fetch');
    let proxyFailure: EreceiptError | undefined;
    let route: ProxyRoute | undefined;
    let agent: typeof pickAgent | HttpAgent = pickAgent;
    if (proxyMaybeSet(url, config.proxy)) {
      const tunnel = await loadTunnel(config);
      route = tunnel.chooseProxy(url, config.proxy).route;
      if (route) {
        markSecret(route.url);
        agent = tunnel.createProxyAgent(route, { ...tlsOptions(config), connectMs, signal: init.signal, onFailure: (error) => (proxyFailure = error) });
      }
    }
    try {
      return await fetch(url, {
        method: init.method,
        // Uncompressed answers are asked for, so zlib stays unloaded; one compressed
        // anyway (a proxy, a misconfigured server) is still read.
        headers: { 'accept-encoding': 'identity', ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: init.signal as never,
        redirect: 'manual',
        size: init.maxBodyBytes,
        agent,
        compress: true,
      });
    } catch (error) {
      // The proxy failed before anything reached the identity service: that is what to say.
      if (proxyFailure) throw proxyFailure;
      if (route && typeof error === 'object' && error !== null) (error as ProxiedError).proxy = route.shown;
      throw error;
    }
  };
}

/** A proxy's password is never printed, as is or as a service or proxy might echo it. */
function markSecret(url: URL): void {
  if (!url.password) return;
  registerSecretValue(url.password);
  try {
    registerSecretValue(decodeURIComponent(url.password));
  } catch {
    // not %-encoded text: the raw form is the one that can be echoed
  }
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
  return withConnectTimeout(new Agent(tlsOptions(config)), connectMs, 'secureConnect');
}

/** The TLS options for the identity service, direct or at the far end of a proxy's tunnel. */
function tlsOptions(config: Pick<Config, 'caFile' | 'legacyServerConnect'>): { ca?: string[]; secureOptions?: number } {
  let ca: string[] | undefined;
  if (config.caFile) {
    const { rootCertificates } = require('node:tls') as typeof import('node:tls');
    try {
      // Added to Node's own roots rather than replacing them, so one configuration
      // serves both the pre-production host (internal ETA root) and production.
      ca = [...rootCertificates, readFileSync(config.caFile, 'utf8')];
    } catch (error) {
      throw new EreceiptError('ERR_CONFIG', `caFile ${config.caFile} cannot be read: fix caFile in the configuration`, { cause: error });
    }
  }
  return {
    ...(ca ? { ca } : {}),
    // OpenSSL 3 refuses servers without RFC 5746 secure renegotiation, which the
    // real identity host has needed; opt-in only.
    ...(config.legacyServerConnect ? { secureOptions: (require('node:crypto') as typeof import('node:crypto')).constants.SSL_OP_LEGACY_SERVER_CONNECT } : {}),
  };
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
