/**
 * Topic names and filters (MQTT 3.1.1 section 4.7), pure: what a filter matches, where its
 * wildcards are, and the `$` rule. Used by the broker's conformance fixes, the retained tree
 * (memory mode), the cluster's retained index and the ACL rules.
 */

const HASH = 35
const PLUS = 43
const DOLLAR = 36

/** a topic (or a topic level) starting with `$`, which a filter starting with a wildcard does not match [MQTT-4.7.2-1] */
export function isDollar(topic: string): boolean {
  return topic.charCodeAt(0) === DOLLAR
}

/**
 * does filter match topic (MQTT 3.1.1 section 4.7; wildcards never match a leading `$`
 * [MQTT-4.7.2-1]); a walk over both strings, level by level, that makes nothing (it runs for
 * every QoS 1/2 delivery whose topic is not itself one of the client's filters: `fanin`'s
 * wildcard subscriber, for one)
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true
  const first = filter.charCodeAt(0)
  if ((first === HASH || first === PLUS) && isDollar(topic)) return false
  const fl = filter.length
  const tl = topic.length
  let f = 0
  let t = 0
  for (;;) {
    // the filter's level is [f, fe), the topic's [t, te); t > tl: the topic has no level left
    let fe = filter.indexOf('/', f)
    if (fe === -1) fe = fl
    const one = fe - f === 1 ? filter.charCodeAt(f) : -1
    if (one === HASH) return true // [MQTT-4.7.1-2]: also the parent level
    if (t > tl) return false
    let te = topic.indexOf('/', t)
    if (te === -1) te = tl
    if (one !== PLUS) {
      if (te - t !== fe - f) return false
      for (let i = 0; i < fe - f; i++) if (filter.charCodeAt(f + i) !== topic.charCodeAt(t + i)) return false
    }
    if (fe === fl) return te === tl
    f = fe + 1
    t = te + 1
  }
}

/** where the first wildcard of a filter is, -1 without one (as aedes-persistence-redis finds it) */
export function wildcardAt(filter: string): number {
  const one = filter.indexOf('+')
  return one !== -1 ? one : filter.indexOf('#')
}

/**
 * the literal part every topic a wildcard filter matches starts with, up to its first wildcard:
 * `a/b/` for `a/b/#` and `a/b/+`; `a/b/#` also matches `a/b` [MQTT-4.7.1-2], read as a topic of its own
 */
export function literalPrefix(filter: string): string {
  return filter.substring(0, wildcardAt(filter))
}

/** `a/b` for `a/b/#`, which matches its parent level too [MQTT-4.7.1-2] */
export function parentOf(filter: string): string | undefined {
  return filter.length > 2 && filter.endsWith('/#') && wildcardAt(filter) === filter.length - 1 ? filter.slice(0, -2) : undefined
}
