import { EXIT } from './command.js';

type StopSignal = 'SIGINT' | 'SIGTERM';

/** The job was stopped by a signal; `main` exits with `exitCode` (130 for SIGINT, 143 for SIGTERM). */
export class Interrupted extends Error {
  override name = 'Interrupted';
  readonly exitCode: number;

  constructor(
    readonly signal: StopSignal,
    options?: ErrorOptions,
  ) {
    super(`interrupted (${signal})`, options);
    this.exitCode = signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
  }
}

/**
 * Runs `job` with a signal that SIGINT or SIGTERM aborts, so an interrupted transfer stops
 * cleanly (its partial files removed) instead of the process dying half-way; whatever the job
 * then throws becomes `Interrupted`. A second signal gets Node's default: the process ends at once.
 */
export async function withInterrupt<T>(job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: StopSignal | undefined;
  const on = (signal: StopSignal) => () => {
    received = signal;
    controller.abort(new Interrupted(signal));
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    return await job(controller.signal);
  } catch (err) {
    if (received !== undefined) throw new Interrupted(received, { cause: err });
    throw err;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
