// Loaded with the tunnel (src/proxy-agent.ts), only where a proxy may be set
// (src/proxy-env.ts): a terminal that reaches the service directly never loads it.
import { getProxyForUrl } from 'proxy-from-env';
import { EreceiptError } from './errors';
import { proxyVariables } from './proxy-env';

/** The proxy the identity service is reached through. */
export interface ProxyRoute {
  /** The proxy's address, credentials included: for the agent only, never shown. */
  url: URL;
  /** `host:port`: all that is ever printed of it. */
  shown: string;
  /** Where it was set: `the configuration`, or the variable (`HTTPS_PROXY`, `https_proxy`, …). */
  source: string;
}

/** Whether a proxy is used, and if not, why not (for `status`). */
export type ProxyChoice = { route: ProxyRoute } | { route?: undefined; why: string };

/**
 * The proxy for a request to `target`: the configuration's `proxy` when it has one
 * (`""` turns proxies off), else the conventional variables as proxy-from-env reads
 * them (`https_proxy`, `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY` for an https://
 * address; `http_proxy`… for an http:// one; `NO_PROXY` leaves hosts out).
 * proxy-from-env reads the process's own environment, and so does this. The caller
 * marks the proxy's password secret (this file is bundled apart from the main one).
 */
export function chooseProxy(target: string, configured: string | undefined): ProxyChoice {
  if (configured !== undefined) {
    if (configured === '') return { why: 'turned off in the configuration ("proxy": "")' };
    return { route: proxyRoute(configured, 'the configuration', 'proxy in the configuration') };
  }
  const env = process.env;
  const variable = proxyVariables(target).find((name) => env[name]);
  if (variable === undefined) return { why: 'none set' };
  // proxy-from-env decides, NO_PROXY included; the variable is named for status.
  if (getProxyForUrl(target) === '') {
    const noProxy = env['no_proxy'] ? 'no_proxy' : 'NO_PROXY';
    return { why: `${noProxy} leaves out ${new URL(target).hostname} (${variable} is set)` };
  }
  return { route: proxyRoute(env[variable] as string, variable, `${variable} variable`) };
}

/**
 * A proxy address as a person wrote it. Without a scheme it is an HTTP proxy (as curl
 * takes it); the tunnel to the identity service is TLS end to end, so the proxy itself
 * is spoken to in plain HTTP: an https:// proxy is refused, and so is anything else
 * that is not `http://[user:password@]host[:port][/]`. Messages never repeat the value,
 * which may hold a password.
 */
function proxyRoute(value: string, source: string, where: string): ProxyRoute {
  const refuse = (why: string) =>
    new EreceiptError('ERR_CONFIG', `the ${where} ${why}`, { remedy: `give it as http://host:port (user:password@ before the host if the proxy asks for them)` });
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw refuse('is not an address');
  }
  if (url.protocol === 'https:') throw refuse('is an https:// proxy, which is not supported (the identity service is reached through an HTTP CONNECT tunnel, TLS end to end)');
  if (url.protocol !== 'http:') throw refuse(`is not an http:// proxy`);
  if (!url.hostname || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) throw refuse('has more than a host and a port');
  return { url, shown: `${url.hostname}:${url.port || '80'}`, source };
}


/** What `status` shows of the proxy: the one in use (its host and port, and where it was set), or why there is none. */
export function describeProxy(target: string, configured: string | undefined): { used: boolean; address?: string; source?: string; reason?: string; error?: string } {
  try {
    const choice = chooseProxy(target, configured);
    return choice.route ? { used: true, address: choice.route.shown, source: choice.route.source } : { used: false, reason: choice.why };
  } catch (error) {
    return { used: false, error: (error as Error).message };
  }
}
