// A tiny forward proxy on loopback for the tests: plain HTTP requests in absolute-URI form are
// forwarded, CONNECT opens a tunnel (for https). It records what it was asked for.
import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';

export interface TestProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `GET http://host/path` for forwarded requests, `CONNECT host:port` for tunnels. */
  seen: string[];
  close(): Promise<void>;
}

export async function startProxy(): Promise<TestProxy> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute URI expected');
      return;
    }
    const upstream = request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    // As real proxies do: a server that does not answer is a 502 from the proxy.
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end('bad gateway');
    });
    req.pipe(upstream);
  });
  server.on('connect', (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host = '', port = '443'] = (req.url ?? '').split(':');
    const tunnel = connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      tunnel.write(head);
      tunnel.pipe(socket);
      socket.pipe(tunnel);
    });
    tunnel.on('error', () => socket.destroy());
    socket.on('error', () => tunnel.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
