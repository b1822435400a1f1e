import { readFileSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SluiceError } from '@sluice/protocol';
import { writeFileAtomic } from '../../platform/atomicWrite.js';
import { ownerOnlyFile } from '../../platform/ownerOnlyFile.js';

/** What a `saveAuth` file holds. */
export interface SavedAuth {
  accessToken: string;
  refreshToken: string;
}

interface AuthFileContent extends SavedAuth {
  version: 1;
  /** The API these tokens belong to: a file written for another server is ignored. */
  apiUrl: string;
}

const INSECURE_ADVICE =
  'its tokens may have been copied: delete it, or run `chmod 600` on it if you are sure ' +
  'nobody else read it';

/** The `saveAuth` file: the tokens of one API kept across runs (mode 0600, deleted on logout). */
export class AuthFile {
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly apiUrl: string,
  ) {}

  /**
   * The saved tokens. Missing, unreadable-as-JSON, or other-server files give undefined (the
   * next login overwrites them). A file that group or others may read, or that is not a regular
   * file, is refused with ERR_INSECURE_FILE: its tokens may already be copied.
   */
  read(): SavedAuth | undefined {
    if (!ownerOnlyFile(this.path, 'saved login', INSECURE_ADVICE)) return undefined;
    let parsed: Partial<AuthFileContent>;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<AuthFileContent>;
    } catch {
      return undefined;
    }
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      parsed.version !== 1 ||
      parsed.apiUrl !== this.apiUrl ||
      typeof parsed.accessToken !== 'string' ||
      typeof parsed.refreshToken !== 'string'
    ) {
      return undefined;
    }
    return { accessToken: parsed.accessToken, refreshToken: parsed.refreshToken };
  }

  /** Saves (or with undefined deletes) the file, one write at a time, in call order. */
  save(auth: SavedAuth | undefined): Promise<void> {
    const next = this.saving
      .catch(() => {})
      .then(() => (auth === undefined ? this.remove() : this.write(auth)));
    this.saving = next;
    return next;
  }

  /** Replaces the file atomically, creating its directory 0700 when missing. */
  private async write(auth: SavedAuth): Promise<void> {
    const content: AuthFileContent = { version: 1, apiUrl: this.apiUrl, ...auth };
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.path, `${JSON.stringify(content)}\n`, { mode: 0o600 });
    } catch (e) {
      throw new SluiceError('ERR_IO', `cannot save the login to ${this.path}`, {
        cause: e,
        path: this.path,
      });
    }
  }

  /** Deletes the file; a missing file is fine. */
  private async remove(): Promise<void> {
    try {
      await unlink(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new SluiceError('ERR_IO', `cannot delete the saved login ${this.path}`, {
        cause: e,
        path: this.path,
      });
    }
  }
}
