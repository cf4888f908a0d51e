/**
 * Loads the proxy tunnel. From source it is an ordinary import; the CLI build
 * replaces this file with scripts/proxy-loader-external.cjs, which loads it from
 * proxy-agent.js beside the bundle.
 */
export function loadProxyAgent(): Promise<typeof import('./proxy-agent')> {
  return import('./proxy-agent');
}
