import type { FastifyBaseLogger } from 'fastify';
import { invalidSetting } from '../errors.js';

/** How long one readiness check may take by default before it counts as failed. */
export const DEFAULT_READINESS_TIMEOUT_MS = 2000;

/**
 * One dependency `GET /readyz` waits on (`storage`, later `database`). Its name is what the 503
 * body and the log say; an error it throws is logged (credentials in URLs masked) but never sent.
 */
export interface ReadinessCheck {
  /** A short word: lower-case letters, digits, `.`, `_` or `-`; unique among the checks. */
  readonly name: string;
  /** Resolves when the dependency answers; `signal` aborts when the timeout passes. */
  check(signal: AbortSignal): Promise<void>;
  /** Default `DEFAULT_READINESS_TIMEOUT_MS`. */
  readonly timeoutMs?: number;
}

/** What one check came to. */
export type CheckOutcome = 'ok' | 'failed' | 'timeout';

/** The answer of `GET /readyz`. */
export interface ReadinessReport {
  ready: boolean;
  /** True once `close()` started: no check is run then. */
  draining: boolean;
  checks: Record<string, CheckOutcome>;
}

const NAME = /^[a-z][a-z0-9._-]{0,39}$/;

/**
 * Refuses check lists `Readiness` could not report clearly (ERR_INVALID_ARG, field
 * `readinessChecks`); `reserved` are the names of the checks the server adds itself.
 */
export function checkReadinessChecks(
  checks: readonly ReadinessCheck[],
  reserved: readonly string[] = [],
): readonly ReadinessCheck[] {
  if (!Array.isArray(checks)) throw invalidSetting('readinessChecks', 'must be an array');
  const seen = new Set<string>(reserved);
  for (const c of checks) {
    const name: unknown = c?.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalidSetting('readinessChecks', 'names must be short lower-case words');
    }
    if (seen.has(name)) throw invalidSetting('readinessChecks', `name ${name} is taken`);
    seen.add(name);
    if (typeof c.check !== 'function') {
      throw invalidSetting('readinessChecks', `${name} has no check function`);
    }
    const t = c.timeoutMs;
    if (t !== undefined && (!Number.isSafeInteger(t) || t < 1)) {
      throw invalidSetting('readinessChecks', `${name}.timeoutMs must be a positive integer`);
    }
  }
  return checks;
}

/**
 * Whether this instance should get traffic: every check passes and it is not shutting down.
 * Concurrent `report()` calls share one run of the checks; a check's change of outcome is
 * logged once (a balancer polls every few seconds, the log should not).
 */
export class Readiness {
  private draining = false;
  private running: Promise<ReadinessReport> | undefined;
  private readonly last = new Map<string, CheckOutcome>();

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly log: FastifyBaseLogger,
  ) {}

  /** From now on every report is not ready (the start of a shutdown). */
  startDraining(): void {
    this.draining = true;
  }

  report(): Promise<ReadinessReport> {
    if (this.draining) return Promise.resolve({ ready: false, draining: true, checks: {} });
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<ReadinessReport> {
    const outcomes = await Promise.all(this.checks.map((c) => this.runOne(c)));
    const checks = Object.fromEntries(this.checks.map((c, i) => [c.name, outcomes[i] ?? 'failed']));
    const ready = !this.draining && outcomes.every((o) => o === 'ok');
    return { ready, draining: this.draining, checks };
  }

  private async runOne(c: ReadinessCheck): Promise<CheckOutcome> {
    const timeoutMs = c.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve('timeout');
      }, timeoutMs);
    });
    let outcome: CheckOutcome;
    let reason: string | undefined;
    try {
      const ran = c.check(controller.signal).then(() => 'ok' as const);
      outcome = await Promise.race([ran, timedOut]);
      // A check that ignores its signal may still settle later: nobody waits for it.
      ran.catch(() => {});
      if (outcome === 'timeout') reason = `no answer within ${timeoutMs} ms`;
    } catch (e) {
      outcome = 'failed';
      reason = describeFailure(e);
    } finally {
      clearTimeout(timer);
    }
    this.note(c.name, outcome, reason);
    return outcome;
  }

  private note(name: string, outcome: CheckOutcome, reason: string | undefined): void {
    const before = this.last.get(name);
    this.last.set(name, outcome);
    if (outcome === before) return;
    if (outcome === 'ok') {
      if (before !== undefined) {
        this.log.info({ event: 'readiness.recovered', check: name }, 'readiness check passes');
      }
      return;
    }
    this.log.warn(
      { event: 'readiness.failed', check: name, outcome, reason },
      'readiness check fails',
    );
  }
}

/** An error for the log: its code and message, cut short, credentials in URLs masked. */
export function describeFailure(e: unknown): string {
  const err = (e ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  const label = typeof err.code === 'string' ? err.code : String(err.name ?? 'Error');
  const message = typeof err.message === 'string' ? err.message : String(e);
  const masked = message.replace(/\/\/[^/\s@]*@/g, '//***@');
  return `${label}: ${masked}`.slice(0, 300);
}
