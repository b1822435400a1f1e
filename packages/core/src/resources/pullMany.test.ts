import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSluiceError } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../http/session.js';
import { pullMany } from './pullMany.js';
import type { PullRequest } from './pullManyOptions.js';

// Behaviour against the real API is in tests/e2e/src/pullMany*.test.ts; here: the argument checks,
// which must refuse a bad batch before a single request goes out.
let requests = 0;
const server = createServer((_req, res) => {
  requests++;
  res.writeHead(500).end();
});
let session: Session;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  session = new Session({ apiUrl: `http://127.0.0.1:${port}` });
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const auth = { password: 'pw', hardware: 'a'.repeat(64) };
const ok: PullRequest = { folder: 'models', name: 'a.bin', to: '/tmp/never-written-a.bin' };

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isSluiceError(e, 'ERR_INVALID_ARG')) return e.message;
    throw e;
  }
  throw new Error('expected ERR_INVALID_ARG');
}

describe('pullMany arguments', () => {
  it('refuses a malformed batch before any request, naming the request', async () => {
    const bad = (r: unknown) => pullMany(session, [ok, r as PullRequest], auth);
    expect(await refusal(bad(null))).toMatch(/^request 1: not an object/);
    expect(await refusal(bad({ ...ok, folder: '../etc.js' }))).toMatch(
      /^request 1: invalid folder/,
    );
    expect(await refusal(bad({ ...ok, name: undefined }))).toMatch(/^request 1: invalid name/);
    expect(await refusal(bad({ ...ok, to: '' }))).toMatch(/^request 1: to must be a file path/);
    expect(await refusal(bad({ ...ok, name: 'b.bin' }))).toMatch(
      /^request 1: writes to the same file as request 0/,
    );
    expect(await refusal(pullMany(session, 'x' as unknown as PullRequest[], auth))).toMatch(
      /must be an array/,
    );
    expect(await refusal(pullMany(session, [ok], { ...auth, concurrency: 0 }))).toMatch(
      /concurrency must be a positive integer/,
    );
    expect(await refusal(pullMany(session, [ok], { ...auth, cdnConcurrency: 2.5 }))).toMatch(
      /cdnConcurrency/,
    );
    expect(await refusal(pullMany(session, [ok], { ...auth, hardware: '' }))).toMatch(/hardware/);
    expect(requests).toBe(0);
  });

  it('an empty batch resolves to no results without a request; an aborted one rejects', async () => {
    expect(await pullMany(session, [], auth)).toEqual([]);
    expect(requests).toBe(0);
    const ac = new AbortController();
    ac.abort();
    await expect(pullMany(session, [ok], { ...auth, signal: ac.signal })).rejects.toSatisfy((e) =>
      isSluiceError(e, 'ERR_ABORTED'),
    );
    expect(requests).toBe(0);
  });
});
