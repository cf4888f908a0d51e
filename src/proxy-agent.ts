// The HTTP CONNECT tunnel to the identity service, through https-proxy-agent. A file
// of its own in the build (dist/proxy-agent.js), loaded only when a proxy is in use,
// so a terminal that reaches the service directly never loads it.
import type { Agent, ClientRequest } from 'node:http';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { EreceiptError } from './errors';
import type { ProxyRoute } from './proxy';

export { chooseProxy, describeProxy } from './proxy';

export interface ProxyAgentOptions {
  /** TLS options for the identity service, at the far end of the tunnel. */
  ca?: string[];
  secureOptions?: number;
  /** How long the proxy may take to open the tunnel, ms. */
  connectMs: number;
  /** The request's own signal: a timeout or a stop also closes a tunnel still opening. */
  signal: AbortSignal;
  /** Told what went wrong on the way to the proxy, before any byte reached the identity service. */
  onFailure: (error: EreceiptError) => void;
}

const REFUSALS: Record<number, string> = {
  403: 'forbids the tunnel (HTTP 403)',
  407: 'asks for credentials it was not given or refused them (HTTP 407)',
  502: 'could not reach the identity service (HTTP 502)',
  503: 'could not reach the identity service (HTTP 503)',
  504: 'timed out reaching the identity service (HTTP 504)',
};

/**
 * An agent for one request through `route`. Anything short of a `200` to CONNECT
 * fails the request with a message that names the proxy (never its credentials),
 * rather than being handed on as if the identity service had answered; a proxy that
 * does not answer is given up after `connectMs`, and its socket closed.
 */
export function createProxyAgent(route: ProxyRoute, options: ProxyAgentOptions): Agent {
  const closing = new AbortController();
  const onAbort = () => closing.abort();
  options.signal.addEventListener('abort', onAbort, { once: true });
  const fail = (what: string, remedy: string, cause?: unknown) => {
    const error = new EreceiptError('ERR_SERVICE_UNAVAILABLE', `proxy ${route.shown} (from ${route.source}) ${what}`, { remedy, ...(cause === undefined ? {} : { cause }) });
    options.onFailure(error);
    return error;
  };

  const tls = { ...(options.ca ? { ca: options.ca } : {}), ...(options.secureOptions ? { secureOptions: options.secureOptions } : {}) };

  class Tunnel extends HttpsProxyAgent<string> {
    override async connect(req: ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
      const target = `${opts.host}:${opts.port}`;
      let status: number | undefined;
      req.once('proxyConnect', (connect: { statusCode: number }) => (status = connect.statusCode));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        closing.abort();
      }, options.connectMs);
      let socket;
      try {
        // https-proxy-agent keeps no agent options for the far end: the TLS options go with
        // each request, and the name is checked against the host asked for, which it
        // leaves out of the TLS options when that host is an IP address.
        const host = opts.host as string;
        const checkName = (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert);
        socket = await super.connect(req, { ...opts, ...tls, checkServerIdentity: checkName } as typeof opts);
      } catch (error) {
        if (options.signal.aborted) throw error; // the request's own timeout or a stop: said by the caller
        if (timedOut) throw fail(`did not open a tunnel to ${target} within ${Math.round(options.connectMs / 1000)} s`, 'check the proxy; try again later', error);
        const code = (error as { code?: string }).code;
        throw fail(code ? `is unreachable (${code})` : 'broke off before answering the tunnel request', 'check the proxy setting and the network; try again later', error);
      } finally {
        clearTimeout(timer);
      }
      if (status !== 200) {
        // https-proxy-agent hands on a refusal as the answer; it never reaches the identity client.
        socket.destroy();
        const refusal = (status !== undefined && REFUSALS[status]) || `refused the tunnel to ${target} (HTTP ${status ?? 'without a status'})`;
        throw fail(refusal, status === 407 ? 'check the user and password in the proxy setting' : 'check the proxy and that it lets this terminal CONNECT to the identity service; try again later');
      }
      return socket;
    }
  }

  // The signal goes to net.connect, so that a proxy that never answers is not left
  // holding the process open once the request is given up.
  return new Tunnel(route.url.href, { signal: closing.signal } as ConstructorParameters<typeof HttpsProxyAgent<string>>[1]);
}
