/** A running throwaway PostgreSQL cluster (see postgres.mjs). */
export interface PostgresCluster {
  /** `postgres://sluice@127.0.0.1:PORT/postgres`: superuser `sluice`, trust auth, no password. */
  url: string;
  port: number;
  /** The cluster's directory (data in `data/`, log in `postgres.log`); removed by `stop()`. */
  dir: string;
  /** Where the unix socket `.s.PGSQL.PORT` is: `dir` itself. */
  socketDir: string;
  /** The postmaster. */
  pid: number;
  /** Kills the cluster and removes `dir`. */
  stop(): Promise<void>;
}

export function startPostgres(options: { dir: string; port?: number }): Promise<PostgresCluster>;
export function stopPostgres(dir: string): Promise<void>;
export function ensurePostgresInstalled(): Promise<true | { ok: false; reason: string }>;
/** The directory holding initdb and postgres, or null when PostgreSQL is not installed. */
export function postgresBinDir(): string | null;
export function testEnv(cluster: PostgresCluster): Record<string, string>;
