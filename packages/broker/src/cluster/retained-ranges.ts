/**
 * Which part of the retained topics' index (retained-index.ts, a sorted set read in byte order
 * with ZRANGEBYLEX) holds the topics a filter can match. Pure: no Redis here.
 */
import { literalPrefix, parentOf, wildcardAt } from '../broker/topic-filter.js'

export function commonPrefix(prefixes: string[]): string {
  let p = prefixes[0] ?? ''
  for (const q of prefixes) {
    let i = 0
    while (i < p.length && i < q.length && p[i] === q[i]) i++
    p = p.slice(0, i)
  }
  return p
}

/** what every topic a filter matches starts with: the filter without a wildcard, `a/b` for `a/b/#`, else the literal prefix */
export function scanPrefix(filter: string): string {
  return wildcardAt(filter) === -1 ? filter : (parentOf(filter) ?? literalPrefix(filter))
}

export type LexBound = Buffer | string
export type LexRange = [LexBound, LexBound]

/** ZRANGEBYLEX bounds of every member that starts with `prefix` (0xFF never occurs in UTF-8) */
export function lexRange(prefix: string): LexRange {
  if (prefix === '') return ['-', '+']
  return [Buffer.from(`[${prefix}`), Buffer.concat([Buffer.from(`[${prefix}`), Buffer.from([0xff])])]
}

/**
 * How to list the topics a filter matches from the index, in byte order:
 * - `exact`: `topic` (the filter has no wildcard; one HEXISTS), then every member of `ranges`, all
 *   of which match: the filter is `#` or a literal path and a final `/#`. `#` matches no topic that
 *   starts with `$` [MQTT-4.7.2-1], so it is the ranges before and after them; `a/b/#` is its
 *   parent `a/b` [MQTT-4.7.1-2] and the range of `a/b/`. Counted and paged inside Redis.
 * - `scan`: the members of `range` (the literal prefix up to the first wildcard) hold every match
 *   but not only matches (`a/+/c` reads `a/`); each is checked in the node.
 */
export type ListPlan = { kind: 'exact'; topic?: string; ranges: LexRange[] } | { kind: 'scan'; range: LexRange }

export function listPlan(filter: string): ListPlan {
  const at = wildcardAt(filter)
  if (at === -1) return { kind: 'exact', topic: filter, ranges: [] }
  if (filter === '#') return { kind: 'exact', ranges: [['-', '($'], ['[%', '+']] }
  const parent = parentOf(filter)
  if (parent !== undefined) return { kind: 'exact', topic: parent, ranges: [lexRange(`${parent}/`)] }
  return { kind: 'scan', range: lexRange(scanPrefix(filter)) }
}
