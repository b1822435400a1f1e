// Removes the package's dist/ before tsc writes it, so a file deleted or moved in src/ cannot
// linger in dist/ and be found by a test or an import that a clean clone would not have.
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
