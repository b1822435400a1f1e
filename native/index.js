// Loader: tries each candidate in turn and records why each one failed (after sharp's loader).
// It never throws; the @sluice/core facade decides whether to fall back to node:crypto.
const path = require('node:path');

function candidates() {
  const list = [];
  if (process.env.SLUICE_NATIVE_PATH) list.push(path.resolve(process.env.SLUICE_NATIVE_PATH));
  list.push(path.join(__dirname, 'build', 'Release', 'sluice_native.node'));
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

module.exports = { load };
