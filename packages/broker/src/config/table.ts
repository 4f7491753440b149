/** The README's config table, rendered from the schema so the two never drift apart. */
import { KEYS, envName, flagName, type KeySpec } from './schema.js'

function defaultText(k: KeySpec): string {
  if (k.defaultDoc) return k.defaultDoc
  if (Array.isArray(k.default)) return k.default.length ? k.default.join(',') : '(none)'
  return k.default === undefined ? 'unset' : String(k.default)
}

export function configTable(): string {
  const rows = (KEYS as readonly KeySpec[]).map(
    (k) => `| \`${k.key}\` | \`${envName(k.key)}\` | \`${flagName(k.key)}\` | ${defaultText(k)} | ${k.doc} |`,
  )
  return ['| file key | environment | flag | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n')
}
