import type { Manifest } from '@sluice/protocol';
import type { ResourceRecord, ResourceVersion } from '../records.js';
import type { SqlExecutor, SqlRow } from './database.js';

const VERSION_COLUMNS =
  'version, manifest, small_blob_id, big_blob_id, cdn_key, wrapped_data_key, created_at, uploaded_by';

function toVersion(row: SqlRow): ResourceVersion {
  return {
    version: Number(row.version),
    manifest: JSON.parse(String(row.manifest)) as Manifest,
    smallBlobId: String(row.small_blob_id),
    bigBlobId: row.big_blob_id === null ? null : String(row.big_blob_id),
    cdnKey: row.cdn_key === null ? null : String(row.cdn_key),
    wrappedDataKey: String(row.wrapped_data_key),
    createdAt: String(row.created_at),
    uploadedBy: String(row.uploaded_by),
  };
}

function current(row: SqlRow): number | null {
  return row.current_version === null || row.current_version === undefined
    ? null
    : Number(row.current_version);
}

/** Resources and their versions over one executor. */
export class ResourceRows {
  constructor(private readonly sql: SqlExecutor) {}

  /** The resource `folder/name` with every version, oldest first. */
  async get(folder: string, name: string): Promise<ResourceRecord | undefined> {
    // One round trip: the resource's row joined with each of its versions.
    const rows = await this.sql.query(
      `SELECT r.id, r.current_version, ${VERSION_COLUMNS.split(', ')
        .map((c) => `v.${c}`)
        .join(', ')}
       FROM resources r LEFT JOIN resource_versions v ON v.resource_id = r.id
       WHERE r.folder = $1 AND r.name = $2 ORDER BY v.version`,
      [folder, name],
    );
    const [first] = rows;
    if (first === undefined) return undefined;
    const versions = rows.filter((r) => r.version !== null).map(toVersion);
    return { id: String(first.id), folder, name, versions, currentVersion: current(first) };
  }

  /**
   * The resources of `folder` by name, each with its latest version only in `versions` and the
   * number of versions it has, and the highest number it ever had (`top`, see latestVersion).
   */
  async listLatest(
    folder: string,
  ): Promise<{ resource: ResourceRecord; count: number; top: number }[]> {
    const rows = await this.sql.query(
      `SELECT r.id, r.name, r.current_version, r.top_version, c.n, ${VERSION_COLUMNS.split(', ')
        .map((c) => `v.${c}`)
        .join(', ')}
       FROM resources r
       JOIN (SELECT resource_id, MAX(version) AS top, COUNT(*) AS n FROM resource_versions
             GROUP BY resource_id) c ON c.resource_id = r.id
       JOIN resource_versions v ON v.resource_id = r.id AND v.version = c.top
       WHERE r.folder = $1 ORDER BY r.name`,
      [folder],
    );
    return rows.map((row) => ({
      resource: {
        id: String(row.id),
        folder,
        name: String(row.name),
        versions: [toVersion(row)],
        currentVersion: current(row),
      },
      count: Number(row.n),
      top: Math.max(Number(row.top_version ?? 0), Number(row.version)),
    }));
  }

  /** The id of `folder/name`, created (with `newId`) when it does not exist yet. */
  async ensure(folder: string, name: string, newId: string): Promise<string> {
    await this.sql.query(
      'INSERT INTO resources (id, folder, name) VALUES ($1, $2, $3) ON CONFLICT (folder, name) DO NOTHING',
      [newId, folder, name],
    );
    const [row] = await this.sql.query('SELECT id FROM resources WHERE folder = $1 AND name = $2', [
      folder,
      name,
    ]);
    if (row === undefined) throw new Error(`resource ${folder}/${name} vanished while adding it`);
    return String(row.id);
  }

  /**
   * The highest version number `resourceId` has ever had (0 for none): a deleted version's number
   * is never given again, so a device or lease naming it cannot get other bytes.
   */
  async latestVersion(resourceId: string): Promise<number> {
    const [row] = await this.sql.query<{ v: number | null; top: number | null }>(
      `SELECT (SELECT MAX(version) FROM resource_versions WHERE resource_id = $1) AS v,
              (SELECT top_version FROM resources WHERE id = $1) AS top`,
      [resourceId],
    );
    return Math.max(Number(row?.v ?? 0), Number(row?.top ?? 0));
  }

  /** Points devices at `version` (null: the latest). */
  async setCurrent(resourceId: string, version: number | null): Promise<void> {
    await this.sql.query('UPDATE resources SET current_version = $2 WHERE id = $1', [
      resourceId,
      version,
    ]);
  }

  /** Deletes one version, remembering its number as used. */
  async removeVersion(resourceId: string, version: number): Promise<void> {
    await this.sql.query(
      'UPDATE resources SET top_version = $2 WHERE id = $1 AND top_version < $2',
      [resourceId, version],
    );
    await this.sql.query('DELETE FROM resource_versions WHERE resource_id = $1 AND version = $2', [
      resourceId,
      version,
    ]);
  }

  async addVersion(resourceId: string, v: ResourceVersion): Promise<void> {
    await this.sql.query(
      `INSERT INTO resource_versions (resource_id, ${VERSION_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        resourceId,
        v.version,
        JSON.stringify(v.manifest),
        v.smallBlobId,
        v.bigBlobId,
        v.cdnKey,
        v.wrappedDataKey,
        v.createdAt,
        v.uploadedBy,
      ],
    );
  }

  /** Deletes the resource and its versions. */
  async remove(resourceId: string): Promise<void> {
    await this.sql.query('DELETE FROM resource_versions WHERE resource_id = $1', [resourceId]);
    await this.sql.query('DELETE FROM resources WHERE id = $1', [resourceId]);
  }

  /** Whether a resource other than `folder/name` has a version on the CDN object `cdnKey`. */
  async cdnKeyClaimedElsewhere(cdnKey: string, folder: string, name: string): Promise<boolean> {
    const rows = await this.sql.query(
      `SELECT 1 AS one FROM resource_versions v JOIN resources r ON r.id = v.resource_id
       WHERE v.cdn_key = $1 AND NOT (r.folder = $2 AND r.name = $3) LIMIT 1`,
      [cdnKey, folder, name],
    );
    return rows.length > 0;
  }

  /** Every stored part a version names (small and big). */
  async referencedBlobIds(): Promise<Set<string>> {
    const rows = await this.sql.query('SELECT small_blob_id, big_blob_id FROM resource_versions');
    const ids = new Set<string>();
    for (const r of rows) {
      ids.add(String(r.small_blob_id));
      if (r.big_blob_id !== null) ids.add(String(r.big_blob_id));
    }
    return ids;
  }

  /** `folder/name` of every resource, sorted. */
  async names(): Promise<string[]> {
    const rows = await this.sql.query('SELECT folder, name FROM resources ORDER BY folder, name');
    return rows.map((r) => `${String(r.folder)}/${String(r.name)}`);
  }

  /** Every CDN key a version names. */
  async referencedCdnKeys(): Promise<Set<string>> {
    const rows = await this.sql.query(
      'SELECT DISTINCT cdn_key FROM resource_versions WHERE cdn_key IS NOT NULL',
    );
    return new Set(rows.map((r) => String(r.cdn_key)));
  }

  async count(): Promise<number> {
    const [row] = await this.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM resources');
    return Number(row?.n ?? 0);
  }
}
