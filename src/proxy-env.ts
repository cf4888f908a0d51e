import type { Config } from './config';
import { EreceiptError } from './errors';
import { loadProxyAgent } from './proxy-loader';

/**
 * The variables that may name a proxy for `target`, in the order proxy-from-env reads
 * them: the scheme's own (`https_proxy`, then `HTTPS_PROXY`), then `all_proxy`, `ALL_PROXY`.
 */
export function proxyVariables(target: string): string[] {
  const scheme = target.slice(0, target.indexOf(':'));
  return [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`, 'all_proxy', 'ALL_PROXY'];
}

/**
 * Whether a proxy may be in use for `target`: the configuration names one, or it says
 * nothing and one of the variables is set. Only then is the proxy code loaded, which
 * decides for good (NO_PROXY included); every other start pays nothing for it.
 */
export function proxyMaybeSet(target: string, configured: string | undefined): boolean {
  if (configured !== undefined) return configured !== '';
  return proxyVariables(target).some((name) => process.env[name]);
}

/** The proxy code (dist/proxy-agent.js beside the bundle), loaded the first time a proxy may be in use. */
export async function loadTunnel(config: Pick<Config, 'proxy'>): Promise<typeof import('./proxy-agent')> {
  try {
    return await loadProxyAgent();
  } catch (error) {
    const where = config.proxy === undefined ? 'a proxy variable is set' : 'the configuration names a proxy';
    throw new EreceiptError('ERR_CONFIG', `${where}, but the proxy support cannot be loaded (${String((error as Error).message).split('\n')[0]})`, {
      cause: error,
      remedy: 'copy proxy-agent.js beside ereceipt-auth.js',
    });
  }
}
