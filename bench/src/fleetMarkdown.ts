// bench:fleet's section of docs/BENCHMARKS.md, from the figures of fleetReport.ts.
import type { TargetId } from './fleetMeasure.js';
import { type Database, type FleetResult, KINDS, type Kind, TARGET_IDS } from './fleetReport.js';

const LABEL: Record<TargetId, string> = {
  embedded: 'embedded default',
  postgres: 'PostgreSQL, 1 instance',
  twoInstances: 'PostgreSQL, 2 instances',
};
const KIND_LABEL: Record<Kind, string> = {
  bind: 'first device bind',
  refresh: 'refresh',
  create: 'user creation',
};

/** Three significant figures at most: 6002.835 → 6003, 1.432 → 1.43, 0.0234 → 0.023. */
function f(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(x.toFixed(digits)));
}

const n = (x: number) => x.toLocaleString('en-US').replace(/,/g, ' ');

function mutationRows(r: FleetResult): string[] {
  const rows: string[] = [];
  for (const id of TARGET_IDS) {
    for (const s of r.runs[id]) {
      const cells = KINDS.map(
        (k) => `${f(s[k].p50)} / **${f(s[k].p99)}** | ${f(s[k].storeP50)} / ${f(s[k].storeP99)}`,
      );
      rows.push(`| ${LABEL[id]} | ${n(s.accounts)} | ${f(s.load1)} | ${cells.join(' | ')} |`);
    }
  }
  return rows;
}

function throughputRows(r: FleetResult): string[] {
  const rows: string[] = [];
  for (const id of TARGET_IDS) {
    const db: Database = id === 'embedded' ? 'embedded' : 'postgres';
    for (const [i, s] of r.runs[id].entries()) {
      const seeded = r.seeding[db][i];
      const added = seeded === undefined ? 0 : seeded.accounts - (r.sizes[i - 1] ?? 0);
      const seedCell =
        id === 'twoInstances' || seeded === undefined
          ? '(same database)'
          : `${f(seeded.seconds)} (${n(Math.round(added / seeded.seconds))}/s)`;
      const p = s.paging;
      const e = s.envelopes;
      rows.push(
        `| ${LABEL[id]} | ${n(s.accounts)} | ${seedCell} | ${f(s.logins.perSecond)} | ${p.pages} in ${f(p.seconds)} | ${f(p.page.p50)} / ${f(p.page.p99)} | ${f(p.firstPage.storeMs)} / ${f(p.page.storeP50)} / ${f(p.slowestPage.storeMs)} (${p.slowestPage.at + 1}) | **${f(e.perSecond)}** | ${f(e.p99)} | ${f(e.serverCpuMsPerEnvelope)} | ${e.databaseCpuMsPerEnvelope === null ? '' : f(e.databaseCpuMsPerEnvelope)} |`,
      );
    }
  }
  return rows;
}

function growthRows(r: FleetResult): string[] {
  return TARGET_IDS.map((id) => {
    const g = r.mutationGrowthBy[id];
    const s = r.storeGrowthBy[id];
    return `| ${LABEL[id]} | ${KINDS.map((k) => `${f(g[k])} (${f(s[k])})`).join(' | ')} |`;
  });
}

function targetRows(r: FleetResult): string[] {
  const largest = n(r.sizes.at(-1) as number);
  const what: Record<keyof FleetResult['targets'], string> = {
    mutationGrowth: `mutationGrowth: p99 at ${largest} over p99 at ${n(r.sizes[0] as number)}, worse backend`,
    bindStoreP99Ms: `mutationP99Ms, first bind, embedded, ${largest}: the store's share (ms; the whole request ${f(r.bindP99Ms)})`,
    refreshP99Ms: `mutationP99Ms, refresh, embedded, ${largest}: the whole request (ms; the store's share ${f(r.refreshStoreP99Ms)})`,
    createStoreP99Ms: `mutationP99Ms, user creation, embedded, ${largest}: the store's share (ms; the whole request ${f(r.createP99Ms)})`,
    postgresVsEmbeddedEnvelopes: `envelopes/s, PostgreSQL over embedded, ${largest}`,
  };
  return Object.entries(r.targets).map(([name, t]) => {
    const key = name as keyof FleetResult['targets'];
    return `| ${what[key]} | ${f(r[key])} | ${t.op} ${t.value} | ${r.targetsMet[key] ? 'met' : '**missed**'} |`;
  });
}

function setup(r: FleetResult): string[] {
  const { passwordHashes: h, envelopeKdf: k } = r.scrypt;
  const sizes = r.sizes.map(n).join(', ');
  return [
    `Each size (${sizes} device accounts) is seeded straight into the store: \`store.users.insert\` and one login each (\`store.families.insert\`), 1 000 accounts per transaction, all with one precomputed scrypt hash of one known password; PostgreSQL is \`VACUUM ANALYZE\`d after each seeding (what autovacuum does within a minute of a bulk load). Then everything goes through the API on loopback, each server in a child process with the default scrypt cost (password hashes N = 2^${h.logN}, r = ${h.r}, p = ${h.p}; the envelope KDF N = 2^${Math.log2(k.N)}, r = ${k.r}, p = ${k.p}) and its envelope cache on, as in bench:api's main run:`,
    '',
    '- **embedded default**: SQLite in the data directory (WAL, `synchronous = FULL`: every commit is fsynced), parts as files;',
    `- **PostgreSQL, 1 instance**: PostgreSQL 15 from \`scripts/postgres\` (fsync, synchronous_commit and full_page_writes off: its commits never wait for the disk), parts in S3 on ${r.s3};`,
    '- **PostgreSQL, 2 instances**: a second server over the same database and data directory (keys), requests sent to the two in turn (request k to instance k mod 2; the envelope load split over both).',
    '',
    `**Mutations**, one request at a time, ${r.samples} of each per row (refresh: ${r.samples * r.refreshRounds}); p50 / **p99** in ms from sending the request to the last byte of the answer, and p50 / p99 of the part the request spent in the store (queries and transactions, timed inside the server process around its database); "load" is the 1-minute load average when the row began:`,
    '',
    '- **first device bind**: the first `POST /resources/get/models` of a never-bound account with the access token of its login: password check (scrypt against the stored hash), envelope KDF (scrypt), the bind (one conditional `UPDATE`), sealing the 64 KiB small part. Always an envelope-cache miss (checked in `Server-Timing`).',
    `- **refresh**: \`POST /token/refresh\` with the newest refresh token of one of those logins (each refreshed ${r.refreshRounds} times in a row): one serializable transaction (family, user, rotation) and a new access token.`,
    '- **user creation**: `POST /users` by an Admin (an Operator with a new email): the password hashed (scrypt), then one transaction (email check, insert).',
  ];
}

function throughputText(r: FleetResult): string[] {
  return [
    `**Throughput and reads.** Seeding: seconds to add the accounts of that row (and their logins). Logins/s: ${r.samples} \`POST /login\` of distinct seeded accounts, ${r.connections} at a time (a scrypt check and a session transaction each). \`GET /users\`: every page of \`limit=1000\` in turn, following \`nextCursor\`; its page latency p50 / p99, and the store's ms for the first page, at p50, and for the slowest page (with its number, 1 the first). Envelopes/s: ${r.connections} autocannon connections for ${r.duration} s taking ${r.envelopeDevices} bound devices in turn, after each device asked each instance twice (the second answer from the envelope cache): the cached path of bench:api, 64 KiB small part. CPU ms per envelope: the server instances, and PostgreSQL's processes.`,
  ];
}

export function renderMarkdown(r: FleetResult): string {
  const largest = n(r.sizes.at(-1) as number);
  const smallest = n(r.sizes[0] as number);
  return [
    `## Fleet: ${smallest} to ${largest} accounts (\`pnpm bench:fleet${r.quick ? ' --quick' : ''}\`)`,
    '',
    `Run on ${r.date} in ${Math.round(r.seconds / 60)} min on ${r.machine.summary}. Load average ${r.load.before.join(' / ')} before, ${r.load.after.join(' / ')} after${loaded(r) ? ": a shared machine (more runnable processes than its cores), so latencies carry other work's scheduling" : ' (the bench itself keeps about 2 runnable)'}.`,
    '',
    ...setup(r),
    '',
    `| backend | accounts | load | ${KINDS.map((k) => `${KIND_LABEL[k]} p50 / **p99** | store p50 / p99`).join(' | ')} |`,
    `| --- | ---: | ---: | ${KINDS.map(() => '---: | ---:').join(' | ')} |`,
    ...mutationRows(r),
    '',
    `Growth from ${smallest} to ${largest} accounts: p99 at ${largest} over p99 at ${smallest} (in brackets: the same of the store's p99).`,
    '',
    `| backend | ${KINDS.map((k) => KIND_LABEL[k]).join(' | ')} |`,
    `| --- | ${KINDS.map(() => '---:').join(' | ')} |`,
    ...growthRows(r),
    '',
    ...throughputText(r),
    '',
    '| backend | accounts | seeding s (accounts/s) | logins/s | GET /users: pages in s | page p50 / p99 ms | page store ms: first / p50 / slowest (its number) | envelopes/s | envelope p99 ms | server CPU ms / envelope | PostgreSQL CPU ms / envelope |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...throughputRows(r),
    '',
    '| target | value | target | |',
    '| --- | ---: | ---: | --- |',
    ...targetRows(r),
    '',
    "The 10 ms of a mutation is held against the whole request for a refresh, and against the store's share for a first bind and a user creation: each of those runs scrypt, whose cost no store changes (the envelope KDF is fixed by the device envelope, docs/API.md, the password hash cost is the server's `scrypt` setting), so their whole requests take what the table above shows at every fleet size. What the target guards — a mutation's cost in the system of record, which grew with the fleet when every mutation rewrote one JSON file — is the store's share.",
    '',
    ...findings(r),
  ].join('\n');
}

/** What the figures say, worked out from them (some sentences only when the run shows it). */
function findings(r: FleetResult): string[] {
  const largest = n(r.sizes.at(-1) as number);
  const smallest = n(r.sizes[0] as number);
  const at = (id: TargetId) => r.runs[id].at(-1) as Run;
  const first = (id: TargetId) => r.runs[id][0] as Run;
  const [e, p, two] = [at('embedded'), at('postgres'), at('twoInstances')];
  const out = [
    `**Where a mutation's time goes** (${largest} accounts, embedded default): a first bind takes ${f(e.bind.p50)} ms at p50, ${f(e.bind.storeP50)} of it in the store; the rest is its two scrypt runs (password check, envelope KDF) and sealing, so with the default cost no first bind comes near 10 ms, whatever the store does (its part: p99 ${f(e.bind.storeP99)} ms). A user creation hashes the new password the same way: ${f(e.create.p50)} ms at p50, ${f(e.create.storeP50)} in the store. A refresh runs no scrypt: ${f(e.refresh.p50)} / ${f(e.refresh.p99)} ms, ${f(e.refresh.storeP50)} / ${f(e.refresh.storeP99)} of it in the store, where the embedded default fsyncs every commit (PostgreSQL here does not wait for the disk: ${f(p.refresh.storeP50)} / ${f(p.refresh.storeP99)}).`,
    '',
    `**Growth.** The store's p50 from ${smallest} to ${largest} accounts, less at the mercy of the machine's other work than a p99 of ${r.samples} requests: ${KINDS.map((k) => `${KIND_LABEL[k]} ${f(first('embedded')[k].storeP50)} → ${f(e[k].storeP50)} ms embedded, ${f(first('postgres')[k].storeP50)} → ${f(p[k].storeP50)} ms PostgreSQL`).join('; ')}.`,
    '',
  ];
  const stalls = stallFinding(e);
  if (stalls !== undefined) out.push(stalls, '');
  out.push(pagingFinding(e, p), '');
  const eCpu = e.envelopes.serverCpuMsPerEnvelope;
  const pCpu = p.envelopes.serverCpuMsPerEnvelope + (p.envelopes.databaseCpuMsPerEnvelope ?? 0);
  out.push(
    `**Envelopes.** A cached envelope makes ${e.envelopes.storeCalls} store calls on the embedded default (${f(e.envelopes.storeMs)} ms in SQLite) and ${p.envelopes.storeCalls} with PostgreSQL, where the login limiter's entries are shared (${f(p.envelopes.storeMs)} ms of round trips; one envelope alone on the server). Under load it costs ${f(eCpu)} ms of CPU on the embedded default and ${f(pCpu)} ms with PostgreSQL (${f(p.envelopes.serverCpuMsPerEnvelope)} in the server, ${f(p.envelopes.databaseCpuMsPerEnvelope ?? Number.NaN)} in PostgreSQL's processes): with every process on the same ${r.machine.cores} cores (the load generator too), CPU alone puts PostgreSQL at ${f(eCpu / pCpu)}× the embedded default's rate, and ${f(r.postgresVsEmbeddedEnvelopes)}× was measured. Two instances over the one database answered ${f(two.envelopes.perSecond)} envelopes/s against one instance's ${f(p.envelopes.perSecond)}: on ${r.machine.cores} cores a second instance brings no CPU of its own, only a second event loop to schedule, so this shows the instances sharing one database under load, not how far they scale.`,
  );
  return out;
}

type Run = FleetResult['runs']['embedded'][number];

function pagingFinding(e: Run, p: Run): string {
  const page = (r: Run) =>
    `${f(r.paging.firstPage.storeMs)}, ${f(r.paging.page.storeP50)} and ${f(r.paging.slowestPage.storeMs)} ms (page ${r.paging.slowestPage.at + 1})`;
  const grows = p.paging.page.storeP50 > 2 * p.paging.firstPage.storeMs;
  return (
    `**Paging** through ${n(e.paging.users)} users takes ${f(e.paging.seconds)} s on the embedded default and ${f(p.paging.seconds)} s on PostgreSQL; the store's part of the first page, at p50 and of the slowest: ${page(e)} embedded, ${page(p)} PostgreSQL.` +
    (grows
      ? " PostgreSQL's pages after the first cost more: its plan for the cursor condition `created_at > $1 OR (created_at = $1 AND id > $2)` walks the `(created_at, id)` index from its start and filters (the cursor is no index bound), so a page costs more the further it is and paging through all of them grows with the square of the users; the row-value form `(created_at, id) > ($1, $2)` is an index range on both backends."
      : '')
  );
}

/**
 * When the embedded default's store p99 is far above its p50: a few slow commits, not a slow
 * query (an index lookup does not vary like that).
 */
function stallFinding(e: Run): string | undefined {
  const stalled = KINDS.filter((k) => e[k].storeP99 > 10 * e[k].storeP50);
  if (stalled.length === 0) return undefined;
  const worst = Math.max(...stalled.flatMap((k) => e[k].slowest.map((x) => x.storeMs)));
  return `**Store outliers.** On the embedded default at ${n(e.accounts)} accounts, the store's p99 of ${stalled.map((k) => `${KIND_LABEL[k]} (${f(e[k].storeP99)} ms against a p50 of ${f(e[k].storeP50)}, of ${e[k].n} requests)`).join(' and ')} comes from a few requests (the slowest spent ${f(worst)} ms in the store) while the rest stay at the p50: commits that waited for their fsync (\`synchronous = FULL\`) on a disk this machine's other work shares, not queries that slow down with the table, whose p50 stays flat.`;
}

/** Whether the 1-minute load average went above the core count before, during or after the run. */
function loaded(r: FleetResult): boolean {
  const ones = [
    r.load.before[0],
    r.load.after[0],
    ...TARGET_IDS.flatMap((id) => r.runs[id].map((s) => s.load1)),
  ];
  return Math.max(...ones.map((x) => x ?? 0)) > r.machine.cores;
}
