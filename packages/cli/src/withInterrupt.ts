/**
 * Runs `job` with a signal that SIGINT aborts, so an interrupted transfer stops cleanly (its
 * partial files removed) instead of the process dying half-way.
 */
export async function withInterrupt<T>(job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  try {
    return await job(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
  }
}
