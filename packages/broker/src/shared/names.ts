/**
 * Shared subscription names: `$share/<group>/<filter>` (MQTT 5.0 section 4.8.2, which Culex also
 * accepts from MQTT 3.1.1 clients, as Mosquitto, EMQX, HiveMQ and VerneMQ do). Pure functions.
 *
 * A group is per (group name, filter): `$share/g/a/#` and `$share/g/b` are two groups. Its key,
 * used in Redis, metrics and on the cluster bus, is the share name without the `$share/` prefix
 * (`g/a/#`): the group name contains no `/`, so the key splits back unambiguously.
 */

export const SHARE_PREFIX = '$share/'

export interface ShareName {
  group: string
  filter: string
  /** `<group>/<filter>` */
  key: string
}

/**
 * What a SUBSCRIBE filter is: undefined for an ordinary filter, 'invalid' for a share name a
 * server must refuse (SUBACK 0x80 in 3.1.1, 0x8F in 5.0): empty group, `+` or `#` in the group
 * [MQTT-4.8.2-2 in v5: the ShareName MUST NOT contain "/", "+" or "#"], or no filter after it
 * [MQTT-4.8.2-1 in v5: at least one character long, followed by "/" and a Topic Filter].
 */
export function parseShare(filter: string): ShareName | 'invalid' | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return filter === '$share' ? 'invalid' : undefined
  const rest = filter.slice(SHARE_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return 'invalid'
  const group = rest.slice(0, slash)
  const inner = rest.slice(slash + 1)
  if (group.includes('+') || group.includes('#') || inner.length === 0) return 'invalid'
  return { group, filter: inner, key: rest }
}

/** the filter a group key stands for (`g/a/#` -> `a/#`) */
export function filterOfKey(key: string): string {
  return key.slice(key.indexOf('/') + 1)
}

/** the group name of a group key */
export function groupOfKey(key: string): string {
  return key.slice(0, key.indexOf('/'))
}

/** a PUBLISH topic no client may use: `$share/...` names subscriptions, never messages */
export function isShareTopic(topic: string): boolean {
  return topic.startsWith(SHARE_PREFIX) || topic === '$share'
}

/** the filter a subscription's ACL is checked against: `f` for `$share/g/f` */
export function aclFilter(filter: string): string {
  const s = parseShare(filter)
  return typeof s === 'object' ? s.filter : filter
}

/**
 * Does `filter` match `topic` (MQTT 3.1.1 section 4.7): `+` one level, `#` the rest (the parent
 * level too), and a filter starting with a wildcard never matches a topic starting with `$`
 * [MQTT-4.7.2-1]. `levels` is `filter.split('/')`, computed once per group.
 */
export function filterMatches(levels: readonly string[], topic: string): boolean {
  if (topic.charCodeAt(0) === 36 && (levels[0] === '+' || levels[0] === '#')) return false
  let start = 0
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level === '#') return true
    if (start > topic.length) return false
    let end = topic.indexOf('/', start)
    if (end === -1) end = topic.length
    if (level !== '+' && (end - start !== level.length || !topic.startsWith(level, start))) return false
    start = end + 1
  }
  return start > topic.length
}
