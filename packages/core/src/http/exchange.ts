import type { Agent } from 'node:http';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { abortError } from '../platform/abort.js';
import { type HttpError, httpErrorFor, NetworkError } from './errors.js';
import type { RequestOptions, SessionBody } from './requestOptions.js';
import { streamingFetch } from './streamingFetch.js';

export interface ExchangeRequest {
  method: string;
  url: URL;
  options: RequestOptions;
  /** The access token to send, if any. */
  token: string | undefined;
}

/** The parsed answer of a 2xx, or the typed error of any other status. */
export type ExchangeOutcome = { value: unknown } | { error: HttpError };

/**
 * One HTTP exchange: a typed error for non-2xx answers, NetworkError when none arrived (or it was
 * cut off), ERR_ABORTED when `signal` fired. `redact` keeps secrets out of the messages.
 */
export async function exchange(
  fetchFn: typeof globalThis.fetch,
  request: ExchangeRequest,
  redact: (text: string) => string,
): Promise<ExchangeOutcome> {
  const { method, url, options } = request;
  const shown = url.href;
  const init = requestInit(request);
  let res: Response;
  let proxy: Agent | undefined;
  try {
    // A streamed body, or any request through a proxy, goes over node:http unless the caller
    // supplied its own fetch.
    proxy = fetchFn === globalThis.fetch ? await proxyAgentFor(url) : undefined;
    res =
      proxy !== undefined || (init.body instanceof ReadableStream && fetchFn === globalThis.fetch)
        ? await streamingFetch(url, init, proxy)
        : await fetchFn(url, init);
  } catch (e) {
    if (options.signal?.aborted) throw abortError(options.signal);
    throw new NetworkError({
      method,
      url: shown,
      serverMessage: redact(describeCause(e)),
      cause: e,
      proxy: proxyOrigin(proxy),
    });
  }
  try {
    if (!res.ok) return { error: await errorOf(res, method, shown, redact) };
    return { value: options.raw === true ? res : await parseBody(res, method, shown) };
  } catch (e) {
    if (options.signal?.aborted) throw abortError(options.signal);
    if (isSluiceError(e)) throw e;
    throw new NetworkError({
      method,
      url: shown,
      serverMessage: `the answer was cut off: ${redact(describeCause(e))}`,
      cause: e,
    });
  }
}

const PROXY_VARIABLES = ['https_proxy', 'http_proxy', 'all_proxy'];

/**
 * The environment's proxy agent for `url`, if any. The proxy code is loaded only when a proxy
 * variable is set (`@sluice/cdn/proxy`, without the rest of cdn).
 */
async function proxyAgentFor(url: URL): Promise<Agent | undefined> {
  const env = process.env;
  if (!PROXY_VARIABLES.some((v) => env[v] || env[v.toUpperCase()])) return undefined;
  return (await import('@sluice/cdn/proxy')).proxyAgentFor(url);
}

/**
 * The origin of the forward proxy the environment names for `url` (`HTTPS_PROXY`, `NO_PROXY`, …;
 * no credentials), or undefined when requests to it go direct: what `Session` requests use.
 */
export async function environmentProxy(url: URL): Promise<string | undefined> {
  return proxyOrigin(await proxyAgentFor(url));
}

/** Where a proxy agent sends requests, without the credentials its URL may carry. */
function proxyOrigin(agent: Agent | undefined): string | undefined {
  const url = (agent as { proxy?: unknown } | undefined)?.proxy;
  return url instanceof URL ? url.origin : undefined;
}

function requestInit({
  method,
  options,
  token,
}: ExchangeRequest): RequestInit & { duplex?: 'half' } {
  const headers = new Headers(options.headers);
  if (!headers.has('accept')) headers.set('accept', 'application/json');
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  let body: SessionBody | undefined;
  if (options.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    body = typeof options.body === 'function' ? options.body() : options.body;
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers, body: body ?? null };
  if (body instanceof ReadableStream) init.duplex = 'half';
  if (options.signal !== undefined) init.signal = options.signal;
  return init;
}

/** The typed error of a non-2xx answer, with the server's `error` text and `code` when it sent them. */
async function errorOf(
  res: Response,
  method: string,
  url: string,
  redact: (text: string) => string,
): Promise<HttpError> {
  const text = await res.text();
  let serverMessage: string | undefined = res.statusText || undefined;
  let serverCode: string | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof parsed.error === 'string') serverMessage = redact(parsed.error);
    if (typeof parsed.code === 'string') serverCode = parsed.code;
  } catch {
    // Not a sluice error body (a proxy's page): the status text stands.
  }
  return httpErrorFor({
    status: res.status,
    method,
    url,
    serverMessage,
    serverCode,
    retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')),
  });
}

/** Parsed JSON, text for other content, undefined for an empty body. */
async function parseBody(res: Response, method: string, url: string): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  const type = res.headers.get('content-type') ?? '';
  if (!/\bjson\b/i.test(type)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new SluiceError('ERR_BAD_RESPONSE', `${method} ${url} answered invalid JSON`, {
      cause: e,
    });
  }
}

function describeCause(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return e instanceof Error ? e.message : String(e);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}
