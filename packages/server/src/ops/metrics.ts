import { Transform, type TransformCallback } from 'node:stream';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** A connection pool's state, as a database-backed store reports it. */
import type { PoolStats } from '../stores/sql/database.js';

export type { PoolStats };

/** Which password check a login limit refused: a login, or a password sent with a token. */
export type LoginRefusal = 'login' | 'token_password';

/** What the resource routes report (docs/API.md, "Metrics"). */
export interface ResourceMeter {
  envelopeIssued(): void;
  /** A pass-through stream that counts the big-part bytes flowing through it. */
  bigPartBytes(): Transform;
}

/** Request latencies up to the minutes a big-part download can take. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The Prometheus metrics of one server, in a registry of its own (so several servers in one
 * process, as in the tests, never share a counter). Labels are route patterns, methods,
 * statuses and fixed words: never a user, an address, a resource name or a raw URL.
 */
export class ServerMetrics implements ResourceMeter {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly durations: Histogram<'method' | 'route'>;
  private readonly envelopes: Counter;
  private readonly bytes: Counter;
  private readonly refusals: Counter<'kind'>;
  private pool: (() => PoolStats | undefined) | undefined;

  /** `requestsInFlight` is read at each scrape (the connection drainer's count). */
  constructor(requestsInFlight: () => number) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'sluice_http_requests_total',
      help: 'Requests answered, by method, route pattern and status (499: closed before an answer)',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.durations = new Histogram({
      name: 'sluice_http_request_duration_seconds',
      help: 'Time from the request head to the end of the answer (or the connection closing)',
      labelNames: ['method', 'route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'sluice_http_requests_in_flight',
      help: 'Requests being answered now, this scrape included',
      registers,
      collect() {
        this.set(requestsInFlight());
      },
    });
    this.envelopes = new Counter({
      name: 'sluice_envelopes_issued_total',
      help: 'Device envelopes issued (POST /resources/get/:folder answered 200)',
      registers,
    });
    this.bytes = new Counter({
      name: 'sluice_big_part_bytes_total',
      help: 'Big-part bytes sent by GET /resources/:folder/:name/big',
      registers,
    });
    this.refusals = new Counter({
      name: 'sluice_login_limit_refusals_total',
      help: 'Password checks refused by the login limits (429), by kind',
      labelNames: ['kind'],
      registers,
    });
    this.poolGauge(registers);
  }

  /** One answered (or abandoned) request; `route` is the pattern, `unmatched` for none. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.durations.observe({ method, route }, seconds);
  }

  envelopeIssued(): void {
    this.envelopes.inc();
  }

  bigPartBytes(): Transform {
    const bytes = this.bytes;
    return new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        bytes.inc(chunk.length);
        callback(null, chunk);
      },
    });
  }

  /** Bound, for the limiter's refusal callback. */
  readonly loginRefused = (kind: LoginRefusal): void => {
    this.refusals.inc({ kind });
  };

  /**
   * Where `sluice_db_pool_connections{state}` reads its values at each scrape: a database-backed
   * metadata store registers its pool here (nothing is reported until one does).
   */
  /**
   * What the sweeper removed since start (uploads aborted, parts and CDN objects removed,
   * failures, passes), read at each scrape.
   */
  observeSweeper(read: () => Record<string, number | null>): void {
    new Gauge({
      name: 'sluice_sweeper_total',
      help: 'Since start: what the sweeper removed (by kind), its failures, passes run and skipped',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        for (const [kind, n] of Object.entries(read())) {
          if (typeof n === 'number' && !kind.startsWith('last')) this.set({ kind }, n);
        }
      },
    });
  }

  observeDatabasePool(read: () => PoolStats | undefined): void {
    this.pool = read;
  }

  /**
   * Adds prom-client's process metrics (CPU, memory, event-loop lag, GC, file descriptors). They
   * install process-wide observers for good: once per process (`sluice serve`), not per server.
   */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private poolGauge(registers: Registry[]): void {
    const gauge: Gauge<'state'> = new Gauge({
      name: 'sluice_db_pool_connections',
      help: 'Metadata database pool: connections open (total), idle, and queries waiting',
      labelNames: ['state'],
      registers,
      collect: () => {
        gauge.reset();
        const stats = this.pool?.();
        if (stats === undefined) return;
        gauge.set({ state: 'total' }, stats.total);
        gauge.set({ state: 'idle' }, stats.idle);
        gauge.set({ state: 'waiting' }, stats.waiting);
      },
    });
  }
}
