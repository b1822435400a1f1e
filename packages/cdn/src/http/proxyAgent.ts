import type { Agent } from 'node:http';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

/** One keep-alive agent per (proxy, target protocol), made on first use. */
const agents = new Map<string, Agent>();

/**
 * The agent that sends a request for `url` through the proxy the environment names for it
 * (`https_proxy`/`HTTPS_PROXY` for https, `http_proxy`/`HTTP_PROXY` for http, `all_proxy`;
 * lower case first, as curl does), or undefined when none does or `no_proxy`/`NO_PROXY` exempts the
 * host. HTTPS goes through a CONNECT tunnel (TLS end to end, the proxy sees only the host); plain
 * HTTP as absolute-URI requests to the proxy. Read at each call, so a changed environment applies.
 */
export function proxyAgentFor(url: URL): Agent | undefined {
  const proxy = getProxyForUrl(url.href);
  if (proxy === '') return undefined;
  const key = `${url.protocol} ${proxy}`;
  let agent = agents.get(key);
  if (agent === undefined) {
    agent =
      url.protocol === 'https:'
        ? new HttpsProxyAgent(proxy, { keepAlive: true })
        : new HttpProxyAgent(proxy, { keepAlive: true });
    agents.set(key, agent);
  }
  return agent;
}
