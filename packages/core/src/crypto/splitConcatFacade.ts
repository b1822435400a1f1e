import { checkOptions, checkPath, checkSignal, checkSize } from '@sluice/protocol';
import { atomicOutput } from '../platform/atomicOutput.js';
import type { BackendOps } from './backendOps.js';
import { guarded, sizeOf } from './guarded.js';

export interface SignalOptions {
  signal?: AbortSignal;
}

/** Cutting a file in two and joining files, outputs written atomically. */
export interface SplitConcatFacade {
  split(
    src: string,
    smallPath: string,
    bigPath: string,
    smallSize: number,
    opts?: SignalOptions,
  ): Promise<void>;
  concat(paths: readonly string[], dst: string, opts?: SignalOptions): Promise<void>;
}

/** Split and concat over `getOps`, called only once every argument has been checked. */
export function splitConcatFacade(getOps: () => BackendOps): SplitConcatFacade {
  return {
    async split(src, smallPath, bigPath, smallSize, opts) {
      checkPath(src, 'src');
      checkPath(smallPath, 'smallPath');
      checkPath(bigPath, 'bigPath');
      if (smallPath === bigPath) throw new RangeError('smallPath and bigPath must differ');
      checkSize(smallSize, 'smallSize');
      const signal = checkSignal(checkOptions<SignalOptions>(opts).signal);
      const ops = getOps();
      const size = await sizeOf(src, 'src');
      if (smallSize > size) {
        throw new RangeError(`smallSize ${smallSize} exceeds the size of src (${size} bytes)`);
      }
      await guarded('split', () =>
        atomicOutput([smallPath, bigPath], { signal, fsync: false }, ([small, big]) =>
          ops.split(src, small as string, big as string, smallSize, signal),
        ),
      );
    },

    async concat(paths, dst, opts) {
      if (!Array.isArray(paths)) throw new TypeError('paths must be an array of file paths');
      for (const [i, p] of paths.entries()) checkPath(p, `paths[${i}]`);
      checkPath(dst, 'dst');
      const signal = checkSignal(checkOptions<SignalOptions>(opts).signal);
      const ops = getOps();
      await guarded('concat', () =>
        atomicOutput([dst], { signal, fsync: false }, ([tmp]) =>
          ops.concat([...paths], tmp as string, signal),
        ),
      );
    },
  };
}
