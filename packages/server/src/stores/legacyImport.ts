import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { isRole } from '@sluice/protocol';
import type { ParcelRecord, RefreshFamily, ResourceRecord, UserRecord } from './records.js';
import type { Store, Tables } from './store.js';

/** The metadata file of versions before the embedded database. */
export const LEGACY_METADATA_FILE = 'metadata.json';
/** Their parcel records. */
export const LEGACY_PARCELS_FILE = 'parcels.json';
/** What an imported file is renamed to: kept as a backup, never read again. */
export const BACKUP_SUFFIX = '.imported.bak';

const IMPORT_MARK = 'legacyImport';

interface LegacyState {
  version: 1;
  users: Record<string, UserRecord & { publisherKeys?: { publicKey: string; addedAt: string }[] }>;
  refreshFamilies: Record<string, RefreshFamily>;
  resources?: Record<string, ResourceRecord>;
  usedParcelTokens?: Record<string, number>;
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Imports `metadata.json` (and `parcels.json`) of an older data directory into the embedded
 * database, once, in one transaction, then renames both to `*.imported.bak`. A file that does not
 * parse refuses the start (nothing is imported); a crash after the commit only leaves the rename
 * to do on the next start.
 */
export async function importLegacyFiles(store: Store, dataDir: string): Promise<boolean> {
  const metaPath = join(dataDir, LEGACY_METADATA_FILE);
  const parcelsPath = join(dataDir, LEGACY_PARCELS_FILE);
  const metaText = await readIfThere(metaPath);
  const parcelsText = await readIfThere(parcelsPath);
  if (metaText === undefined && parcelsText === undefined) return false;
  const state = metaText === undefined ? undefined : parseState(metaText, metaPath);
  const parcels = parcelsText === undefined ? {} : parseParcels(parcelsText, parcelsPath);
  const imported = await store.transaction(async (t) => {
    if ((await t.meta.get(IMPORT_MARK)) !== undefined) return false;
    if ((await t.users.count()) > 0 || (await t.resources.count()) > 0) {
      throw new Error(
        `${metaPath} exists next to a database that already holds data; move one of them away`,
      );
    }
    if (state !== undefined) await importState(t, state);
    for (const p of Object.values(parcels)) await t.parcels.addUnlessLive(p);
    await t.meta.set(IMPORT_MARK, new Date().toISOString());
    return true;
  });
  if (metaText !== undefined) await rename(metaPath, `${metaPath}${BACKUP_SUFFIX}`);
  if (parcelsText !== undefined) await rename(parcelsPath, `${parcelsPath}${BACKUP_SUFFIX}`);
  return imported;
}

async function importState(t: Tables, state: LegacyState): Promise<void> {
  for (const u of Object.values(state.users)) {
    const { publisherKeys, ...user } = u;
    await t.users.insert(user);
    for (const k of publisherKeys ?? []) await t.users.addPublisherKey(user.id, k);
  }
  for (const f of Object.values(state.refreshFamilies)) await t.families.insert(f);
  for (const r of Object.values(state.resources ?? {})) {
    const id = await t.resources.ensure(r.folder, r.name, r.id);
    for (const v of r.versions) await t.resources.addVersion(id, v);
  }
  for (const [jti, forgetAfter] of Object.entries(state.usedParcelTokens ?? {})) {
    await t.parcels.consumeToken(jti, forgetAfter);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON; refusing to start over it`, { cause: e });
  }
}

function parseState(text: string, path: string): LegacyState {
  const s = parseJson(text, path) as Partial<LegacyState> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    s.version !== 1 ||
    typeof s.users !== 'object' ||
    s.users === null ||
    typeof s.refreshFamilies !== 'object' ||
    s.refreshFamilies === null
  ) {
    throw new Error(`${path} is not a version 1 sluice metadata file`);
  }
  for (const u of Object.values(s.users)) {
    if (typeof u?.id !== 'string' || typeof u.email !== 'string' || !isRole(u.role)) {
      throw new Error(`${path} holds a malformed user record`);
    }
    // A cut-off that does not parse would let every old token through: refuse to start.
    const cut: unknown = u.tokensValidAfter;
    if (cut !== undefined && !(typeof cut === 'string' && Number.isFinite(Date.parse(cut)))) {
      throw new Error(`${path} holds a malformed tokensValidAfter for user ${u.id}`);
    }
  }
  if (s.resources !== undefined && (typeof s.resources !== 'object' || s.resources === null)) {
    throw new Error(`${path} holds a malformed resources table`);
  }
  const used: unknown = s.usedParcelTokens;
  if (
    used !== undefined &&
    (typeof used !== 'object' ||
      used === null ||
      Object.values(used).some((t) => typeof t !== 'number'))
  ) {
    throw new Error(`${path} holds a malformed usedParcelTokens table`);
  }
  return s as LegacyState;
}

function parseParcels(text: string, path: string): Record<string, ParcelRecord> {
  const file = parseJson(text, path) as { version?: unknown; parcels?: unknown } | null;
  if (typeof file !== 'object' || file === null || file.version !== 1) {
    throw new Error(`${path} is not a version 1 sluice parcels file`);
  }
  const parcels = file.parcels as Record<string, ParcelRecord> | null;
  if (typeof parcels !== 'object' || parcels === null) {
    throw new Error(`${path} is not a version 1 sluice parcels file`);
  }
  for (const [id, p] of Object.entries(parcels)) {
    if (p?.id !== id || typeof p.owner !== 'string' || typeof p.sha256 !== 'string') {
      throw new Error(`${path} holds a malformed parcel record`);
    }
  }
  return parcels;
}
