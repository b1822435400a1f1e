import { abortError } from '../../platform/abort.js';

/**
 * One promise that any number of callers wait on, each with its own AbortSignal. A caller's
 * abort only rejects that caller; the operation itself is aborted once every caller has left.
 */
export class SharedOperation<K extends string> {
  readonly kind: K;
  readonly promise: Promise<void>;
  private readonly controller = new AbortController();
  private waiters = 0;

  constructor(kind: K, run: (signal: AbortSignal) => Promise<void>) {
    this.kind = kind;
    this.promise = run(this.controller.signal);
    // Every waiter sees the failure; an operation nobody waits on any more must not crash Node.
    this.promise.catch(() => {});
  }

  /** True once every waiter left and the operation was told to stop: do not join it. */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  wait(signal?: AbortSignal): Promise<void> {
    if (signal === undefined) {
      this.waiters += 1;
      return this.promise;
    }
    if (signal.aborted) return Promise.reject(abortError(signal));
    this.waiters += 1;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters -= 1;
        if (this.waiters === 0) this.controller.abort(signal.reason);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.promise.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }
}
