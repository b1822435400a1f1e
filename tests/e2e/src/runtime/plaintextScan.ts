// Looks for plaintext on disk: every file under a root that holds any of the needles (windows
// of the plaintext), read in pieces that overlap by a needle's length.
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const PIECE = 4 * 1024 * 1024;
/** Larger files are skipped (none of ours is; other people's databases may be). */
const MAX_FILE = 512 * 1024 * 1024;

export interface ScanRoot {
  dir: string;
  /** Only files created or changed since then (ms), for shared roots such as os.tmpdir(). */
  sinceMs?: number;
}

/** The files under `roots` that contain one of `needles`. Unreadable or vanished files are skipped. */
export async function filesHolding(needles: Buffer[], roots: ScanRoot[]): Promise<string[]> {
  const found: string[] = [];
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const visit = async (dir: string, sinceMs: number | undefined): Promise<void> => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined || st.isSymbolicLink()) continue;
      if (st.isDirectory()) await visit(path, sinceMs);
      else if (st.isFile() && st.size <= MAX_FILE) {
        if (sinceMs !== undefined && Math.max(st.mtimeMs, st.ctimeMs) < sinceMs) continue;
        if (await holds(path, needles, overlap)) found.push(path);
      }
    }
  };
  for (const root of roots) await visit(root.dir, root.sinceMs);
  return found;
}

async function holds(path: string, needles: Buffer[], overlap: number): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (fh === undefined) return false;
  try {
    const buffer = Buffer.alloc(PIECE + overlap);
    let kept = 0;
    for (let position = 0; ; ) {
      const { bytesRead } = await fh.read(buffer, kept, PIECE, position);
      if (bytesRead === 0) return false;
      const window = buffer.subarray(0, kept + bytesRead);
      if (needles.some((n) => window.includes(n))) return true;
      position += bytesRead;
      kept = Math.min(overlap, window.length);
      window.copy(buffer, 0, window.length - kept);
    }
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}
