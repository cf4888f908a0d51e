// proxy-from-env 2 ships no type declarations; this is the one function it has.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from the process's http_proxy/https_proxy/all_proxy and NO_PROXY, or '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
