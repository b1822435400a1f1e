import type { Readable } from 'node:stream';
import { describe, Transient } from './errors.js';

/**
 * Reads exactly `length` bytes of `body` into one buffer (`into` when it has that length). A body
 * that breaks off or comes short is Transient; one that runs longer fails with `tooLong()`, which
 * each driver decides. The body is destroyed on any failure.
 */
export function readExactly(
  body: Readable,
  length: number,
  signal: AbortSignal,
  into: Buffer | undefined,
  tooLong: (length: number) => Error,
): Promise<Buffer> {
  const out = into !== undefined && into.length === length ? into : Buffer.allocUnsafe(length);
  let at = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const fail = (e: unknown) => {
      body.destroy();
      const broke = `body broke off after ${at} of ${length} bytes: ${describe(e)}`;
      reject(signal.aborted ? e : new Transient(broke, { cause: e }));
    };
    body.on('data', (piece: Buffer) => {
      if (at + piece.length > length) {
        body.destroy();
        reject(tooLong(length));
        return;
      }
      piece.copy(out, at);
      at += piece.length;
    });
    body.on('end', () => {
      if (at !== length) reject(new Transient(`short body: ${at} of ${length} bytes`));
      else resolve(out);
    });
    body.on('error', fail);
    body.on('aborted', () => fail(new Error('response aborted')));
    // destroyed without an error (e.g. by its own request's abort): settled here, never hanging
    body.on('close', () => fail(new Error('body closed before its end')));
  });
}
