/**
 * Replacing one of node:stream's functions for the whole process (seam rows P9 `pipeline`, C19
 * `finished`): Aedes imports them by name, an ES module's live binding of the builtin, so the
 * CommonJS export is replaced and `module.syncBuiltinESMExports()` carries it to those bindings.
 * The replacement keeps the original's own properties (util.promisify.custom, which
 * stream/promises' versions hang on). The widest reach of the seam: it is in this one place.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module'

export type StreamFn = (this: unknown, ...args: unknown[]) => unknown

/** node:stream's `name` becomes `wrap(original)`; call once per process */
export function replaceStreamExport(name: 'pipeline' | 'finished', wrap: (original: StreamFn) => StreamFn): void {
  const stream = createRequire(import.meta.url)('node:stream') as Record<string, StreamFn>
  const original = stream[name]!
  const replacement = wrap(original)
  for (const key of Reflect.ownKeys(original)) {
    if (key === 'length' || key === 'name' || key === 'prototype') continue
    Object.defineProperty(replacement, key, Object.getOwnPropertyDescriptor(original, key)!)
  }
  stream[name] = replacement
  syncBuiltinESMExports()
}
