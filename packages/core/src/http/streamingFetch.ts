import { type Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

/**
 * `fetch` over node:http(s), for requests with a stream body and for requests through a proxy
 * (`agent`, from `proxyAgentFor`). The global fetch (undici, Node 20) reads a streamed request
 * body far ahead of the socket, so an upload's memory grew with the file (`pnpm bench:pull`: push
 * peak RSS 2137 MB for 2 GiB through fetch, 135 MB through this), and it knows no proxy. Other
 * bodies (JSON text, bytes, a form) are encoded as fetch would, then sent whole. Responses come back
 * as a standard `Response`; network failures reject with a TypeError, as fetch's do.
 */
export async function streamingFetch(
  url: URL,
  init: RequestInit,
  agent?: Agent,
): Promise<Response> {
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => {
    headers[k] = v;
  });
  const method = init.method ?? 'GET';
  let body: ReadableStream | Uint8Array | undefined;
  if (init.body instanceof ReadableStream) body = init.body;
  else if (init.body !== undefined && init.body !== null) {
    // Request encodes the body and gives its content-type (a form's boundary), as fetch does.
    const encoded = new Request(url, { method, body: init.body, headers: init.headers });
    body = new Uint8Array(await encoded.arrayBuffer());
    const type = encoded.headers.get('content-type');
    if (type !== null) headers['content-type'] = type;
    headers['content-length'] = String(body.byteLength);
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    const req = send(url, { method, headers, signal: init.signal ?? undefined, agent });
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(new TypeError('fetch failed', { cause: e }));
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      if (settled) return;
      settled = true;
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (typeof v === 'string') out.set(k, v);
        else if (Array.isArray(v)) for (const one of v) out.append(k, one);
      }
      const noBody = res.statusCode === 204 || res.statusCode === 304;
      if (noBody) res.resume();
      resolve(
        new Response(
          noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>),
          { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: out },
        ),
      );
    });
    if (!(body instanceof ReadableStream)) {
      req.end(body);
      return;
    }
    // A server may answer (e.g. 413) before it has read the body: the pipeline then fails with
    // EPIPE or a reset, which is not the request's outcome; the response decides.
    pipeline(Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>), req).catch(
      (e: unknown) => {
        setTimeout(() => fail(e), 50);
      },
    );
  });
}
