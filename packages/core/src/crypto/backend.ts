import { dirname, join } from 'node:path';
import { SluiceError } from '@sluice/protocol';
import type { BackendOps } from './backendOps.js';
import { loadNative, type NativeLoad } from './loadNative.js';
import { nativeOps } from './nativeOps.js';
import { nodeOps } from './nodeOps.js';

export type BackendKind = 'native' | 'node';

export interface BackendInfo {
  kind: BackendKind;
  /** Why this backend was chosen (and, on fallback, why native failed). */
  reason: string;
}

function failures(load: NativeLoad): string {
  if (load.errors.length === 0) return '  - no candidate was tried';
  // Node's module errors append a multi-line "Require stack"; the first line says what failed.
  return load.errors.map((e) => `  - ${e.candidate}: ${e.message.split('\n')[0]}`).join('\n');
}

export function nativeUnavailableError(load: NativeLoad, why: string): SluiceError {
  const headers = join(dirname(dirname(process.execPath)), 'include', 'node');
  return new SluiceError(
    'ERR_NATIVE_UNAVAILABLE',
    `${why}, but the native addon could not be loaded:\n${failures(load)}\n` +
      'Fix: build it with `pnpm --filter @sluice/native build` (needs python3, make, g++ and the ' +
      `Node headers at ${headers}), point SLUICE_NATIVE_PATH at a built sluice.node, ` +
      'or unset SLUICE_BACKEND to fall back to node:crypto.',
  );
}

/**
 * Decides the backend from the SLUICE_BACKEND value and a native loader (injectable for tests).
 * Throws ERR_NATIVE_UNAVAILABLE when native is forced and cannot load, ERR_INVALID_ARG for an
 * unknown SLUICE_BACKEND value.
 */
export function resolveBackend(
  mode: string | undefined,
  load: () => NativeLoad,
): BackendInfo & { ops: BackendOps } {
  if (mode === 'node') {
    return {
      kind: 'node',
      reason: 'SLUICE_BACKEND=node forces the node:crypto backend',
      ops: nodeOps,
    };
  }
  if (mode !== undefined && mode !== '' && mode !== 'auto' && mode !== 'native') {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `SLUICE_BACKEND must be "native", "node", "auto" or unset, got ${JSON.stringify(mode)}`,
    );
  }
  const result = load();
  if (result.binding) {
    const forced = mode === 'native' ? 'SLUICE_BACKEND=native; ' : '';
    return {
      kind: 'native',
      reason: `${forced}native addon loaded from ${result.path ?? '@sluice/native'} (${result.binding.opensslVersion})`,
      ops: nativeOps(result.binding),
    };
  }
  if (mode === 'native') throw nativeUnavailableError(result, 'SLUICE_BACKEND=native');
  return {
    kind: 'node',
    reason: `native addon unavailable, using node:crypto:\n${failures(result)}`,
    ops: nodeOps,
  };
}

let nativeCache: BackendOps | undefined;

/** The ops of a specific backend; native throws ERR_NATIVE_UNAVAILABLE when it cannot load. */
export function opsFor(kind: BackendKind): BackendOps {
  if (kind === 'node') return nodeOps;
  const load = loadNative();
  if (!load.binding) throw nativeUnavailableError(load, 'the native backend was requested');
  nativeCache ??= nativeOps(load.binding);
  return nativeCache;
}

/** The ops of the default backend, honouring SLUICE_BACKEND at each call. */
export function defaultOps(): BackendOps {
  const { kind } = resolveBackend(process.env.SLUICE_BACKEND, loadNative);
  return opsFor(kind);
}

/** Which backend the facade uses and why. */
export function backend(): BackendInfo {
  const { kind, reason } = resolveBackend(process.env.SLUICE_BACKEND, loadNative);
  return { kind, reason };
}
