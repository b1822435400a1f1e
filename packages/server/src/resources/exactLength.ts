import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes `length` bytes through and fails the stream when the source ends short of them or
 * runs past them. A response whose stream fails after its headers were sent has its connection
 * destroyed, so a client sees a broken body at once instead of waiting on an open keep-alive
 * connection for bytes that will never come (a stored part shorter than its manifest).
 */
export function exactLength(length: number, onMismatch: (received: number) => void): Transform {
  let received = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      received += chunk.length;
      if (received > length) {
        onMismatch(received);
        callback(new Error(`stored part longer than the ${length} bytes promised`));
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (received === length) {
        callback();
        return;
      }
      onMismatch(received);
      callback(new Error(`stored part ended after ${received} of ${length} bytes`));
    },
  });
}
