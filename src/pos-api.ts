import type { Agent } from 'node:http';
import type { RequestInfo, RequestInit, Response } from 'node-fetch';
import type { DeviceHal } from '../hal/types';
import { systemClocks, type Clocks } from './clock';
import { loadConfig, type Config } from './config';
import type { Logger } from './log';
import { loginOnce } from './login';
import { openHal } from './open-hal';
import { createTokenManager as createManager, type ManagerState } from './token-manager';
import { createAgents, createTransport, type HttpTransport } from './transport';

/** What a POS application running in Node uses. */
export interface PosTokenManager {
  /** A valid access token, renewed ahead of expiry in the background; one login shared by concurrent callers. */
  getToken(): Promise<string>;
  /**
   * `fetch` with `Authorization: Bearer …`. On a 401 (the token expired early, or was
   * revoked) it logs in once more and replays the request once; a second 401 is
   * returned to the caller. Text, bytes (Buffer, typed arrays, ArrayBuffer) and
   * URLSearchParams bodies are replayed; a stream cannot be: its 401 is returned.
   */
  authorizedFetch(url: RequestInfo, init?: RequestInit): Promise<Response>;
  /**
   * A new token now, as after a 401 of the application's own: concurrent callers share
   * one login, and a caller whose `stale` token was already replaced gets the new one
   * without another.
   */
  forceRefresh(stale?: string): Promise<string>;
  /** What the manager is doing: the token's expiry, the last error, the next attempt. */
  state(): ManagerState;
  /**
   * Stops the background renewal and releases the HAL. A `getToken` still waiting, and
   * every call after this, rejects with code `ERR_CLOSED` (not transient).
   */
  close(): Promise<void>;
}

const SILENT: Logger = { error() {}, warn() {}, info() {} };

/**
 * Whether a request body can be sent a second time after a 401: text, bytes (a
 * Buffer, any typed array or DataView, an ArrayBuffer) and form parameters can;
 * a stream cannot (it is spent), nor anything else node-fetch would read once.
 */
export function isReplayableBody(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    ArrayBuffer.isView(body) ||
    Object.prototype.toString.call(body) === '[object ArrayBuffer]'
  );
}

/** Seams for tests and special set-ups; each defaults to the real thing. */
export interface PosTokenManagerOptions {
  hal?: DeviceHal;
  transport?: HttpTransport;
  clocks?: Clocks;
  /** Where the manager says what it does (renewals, failures, retries); by default nowhere. */
  log?: Logger;
}

/**
 * The in-process token manager of SPEC "For a Node.js POS application". Takes the
 * configuration (or its path); nothing happens until the first `getToken`.
 */
export function createTokenManager(config: Config | string, options: PosTokenManagerOptions = {}): PosTokenManager {
  const cfg = typeof config === 'string' ? loadConfig(config) : config;
  const clocks = options.clocks ?? systemClocks;
  // Silent unless the application passes a logger: nothing on the host's stderr of its own accord.
  const log = options.log ?? SILENT;
  const transport = options.transport ?? createTransport(cfg);
  let hal = options.hal;
  let started = false;
  let agents: { http: Agent; https: Agent } | undefined;

  const manager = createManager({
    login: async (signal) => {
      hal ??= await openHal(cfg.hal);
      return loginOnce(cfg, hal, transport, clocks)(signal);
    },
    clocks,
    log,
    keepAlive: false,
  });

  const getToken = () => {
    if (!started) {
      started = true;
      return manager.forceRefresh();
    }
    return manager.getToken();
  };

  async function send(url: RequestInfo, init: RequestInit, token: string): Promise<Response> {
    const { default: fetch, Headers } = await import('node-fetch');
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    agents ??= createAgents(cfg, Math.max(1000, (cfg.timeoutSeconds * 1000) / 3));
    const pick = agents;
    return fetch(url, { ...init, headers, agent: init.agent ?? ((u: URL) => (u.protocol === 'https:' ? pick.https : pick.http)) });
  }

  return {
    getToken,
    forceRefresh: (stale) => {
      started = true;
      return manager.forceRefresh(stale);
    },
    async authorizedFetch(url, init = {}) {
      const token = await getToken();
      const first = await send(url, init, token);
      if (first.status !== 401 || !isReplayableBody(init.body)) return first;
      await first.arrayBuffer().catch(() => undefined);
      // Several requests may meet the same 401: one new login serves them all.
      return send(url, init, await manager.forceRefresh(token));
    },
    state: () => manager.state(),
    async close() {
      await manager.close();
      await hal?.close();
    },
  };
}
