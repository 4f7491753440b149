/**
 * `CULEX_*` environment variables that are no Culex setting: a typo (`CULEX_PORT` for
 * `CULEX_MQTT_PORT`) would otherwise leave the default in force without a word, where the same
 * typo in the config file stops the start (load.ts: unknown keys). They are reported, not
 * refused, as EMQX does with its `EMQX_*` variables (`unknown_env_vars` at boot): the environment
 * is shared with whatever else runs there, e.g. the service links Kubernetes puts in every pod
 * for a Service named `culex` (CULEX_PORT=tcp://..., CULEX_SERVICE_HOST, CULEX_PORT_1883_TCP...),
 * which are skipped here. Pure: the caller logs.
 */
import { envName, KEYS } from './schema.js'

/** read by the CLI or the bench, not settings of a node (local-cluster/assets.ts, procs.ts; bench heap.ts) */
const OTHER_VARIABLES = new Set(['CULEX_HOME', 'CULEX_SYSTEM_BIN_DIRS', 'CULEX_BENCH_GC_DIR'])
/** Kubernetes service links of a Service named culex: CULEX_PORT and CULEX_PORT_1883_TCP hold a URL */
const SERVICE_LINK = /^CULEX_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)_(ADDR|PORT|PROTO))$/
const SERVICE_URL = /^CULEX_PORT(_\d+_(TCP|UDP|SCTP))?$/
const isServiceLink = (name: string, value: string | undefined): boolean =>
  SERVICE_LINK.test(name) || (SERVICE_URL.test(name) && /^(tcp|udp|sctp):\/\//.test(value ?? ''))
/**
 * test and script knobs of this repository (CULEX_CHAOS, CULEX_FUZZ_SEED, CULEX_SHARE_LONG, ...),
 * inherited by the nodes they start; by suffixes no setting has (a `_MESSAGES` suffix would hide a
 * typo of CULEX_DELIVERY_BUFFER_MESSAGES: the two resume knobs are named whole)
 */
const HARNESS = /^CULEX_(CHAOS|FUZZ|BENCH|ASYNC_COUNT|SCREENSHOT)(_|$)|_(LONG|ROUNDS|LOGS)$|^CULEX_(RM_)?RESUME_MESSAGES$/

/** one line per unknown variable, with the nearest setting's variable when one is close */
export function unknownEnvironment(env: NodeJS.ProcessEnv): string[] {
  const known = KEYS.map(({ key }) => envName(key))
  const names = new Set(known)
  const out: string[] = []
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('CULEX_') || names.has(name) || OTHER_VARIABLES.has(name)) continue
    if (isServiceLink(name, env[name]) || HARNESS.test(name)) continue
    const near = nearest(name, known)
    out.push(`${name} is not a Culex setting and is ignored${near ? ` (did you mean ${near}?)` : ''}`)
  }
  return out
}

/** the few settings whose names end with what was written, else the one within a third of its length in edits */
function nearest(name: string, known: string[]): string | undefined {
  // CULEX_ANONYMOUS -> CULEX_ALLOW_ANONYMOUS, CULEX_PORT -> the four ports
  const rest = name.slice('CULEX_'.length)
  const ends = known.filter((k) => k.endsWith(`_${rest}`))
  if (ends.length > 0 && ends.length <= 4) return ends.join(' or ')
  let best: string | undefined
  let bestCost = Math.max(1, Math.floor(rest.length / 3)) + 1
  for (const k of known) {
    const cost = distance(name, k)
    if (cost < bestCost) [best, bestCost] = [k, cost]
  }
  return best
}

/** Levenshtein distance */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}
