// Loader: tries each candidate in turn and records why each one failed (after sharp's loader).
// It never throws; the @sluice/core facade decides whether to fall back to node:crypto.
const path = require('node:path');

/**
 * Where scripts/build.mjs puts the Release build for this platform and Node ABI (and where a packed
 * @sluice/native carries its prebuilt addon): one directory per Node, so builds for Node 20 and
 * Node 24 sit side by side and neither loads the other's.
 */
function abiDir() {
  const tag = `${process.platform}-${process.arch}-abi-${process.versions.modules}`;
  return path.join(__dirname, 'build', tag);
}

function candidates() {
  const list = [];
  if (process.env.SLUICE_NATIVE_PATH) list.push(path.resolve(process.env.SLUICE_NATIVE_PATH));
  list.push(path.join(abiDir(), 'sluice_native.node'));
  list.push(path.join(__dirname, 'build', 'Debug', 'sluice_native.node'));
  return list;
}

function load() {
  const errors = [];
  for (const candidate of candidates()) {
    try {
      const binding = require(candidate);
      return { binding, path: candidate, errors };
    } catch (err) {
      errors.push({ candidate, message: err?.message ? err.message : String(err) });
    }
  }
  return { binding: null, path: null, errors };
}

module.exports = { load, abiDir };
