/**
 * Topic filters compiled for ACL matching. A rule's filter is split into
 * levels once, when the ACL is loaded; matching a topic then walks the topic
 * string in place (indexOf / startsWith): no split, no regex, no allocation
 * per message. `%u` and `%c` stand for a whole level and compare with the
 * client's username and client id.
 */
import { isDollar } from '../broker/topic-filter.js'

export enum Kind {
  Literal = 0,
  /** `+`: exactly one level */
  One = 1,
  /** `#`: this level and every one below, or none (a/# matches a) */
  Many = 2,
  /** `%u`: the username */
  User = 3,
  /** `%c`: the client id */
  Client = 4,
}

export interface Level {
  kind: Kind
  text: string
}

export type Compiled = readonly Level[]

/** why a rule's topic filter is unusable, or undefined when it is fine */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'empty topic filter'
  if (filter.length > 65535) return 'topic filter longer than 65535 characters'
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return "'#' must be a whole level and the last one [MQTT-4.7.1-2]"
    if (l.includes('+') && l !== '+') return "'+' must be a whole level [MQTT-4.7.1-3]"
    if ((l.includes('%u') && l !== '%u') || (l.includes('%c') && l !== '%c')) return '%u and %c must be a whole level'
    if (l.includes('\u0000')) return 'U+0000 in a topic filter [MQTT-1.5.3-2]'
  }
  return undefined
}

export function compileFilter(filter: string): Compiled {
  const problem = filterProblem(filter)
  if (problem) throw new Error(`${JSON.stringify(filter)}: ${problem}`)
  return filter.split('/').map((text): Level => {
    switch (text) {
      case '+':
        return { kind: Kind.One, text }
      case '#':
        return { kind: Kind.Many, text }
      case '%u':
        return { kind: Kind.User, text }
      case '%c':
        return { kind: Kind.Client, text }
      default:
        return { kind: Kind.Literal, text }
    }
  })
}

const SLASH = '/'

/**
 * Does a topic name (no wildcards) match the compiled filter, with %u/%c
 * bound to user/clientId? A filter starting with a wildcard does not match a
 * topic starting with '$' [MQTT-4.7.2-1]. An undefined user (anonymous)
 * matches no %u level.
 */
export function matchTopic(filter: Compiled, topic: string, user: string | undefined, clientId: string): boolean {
  const n = topic.length
  let pos = 0
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i]!
    if (level.kind === Kind.Many) return !(i === 0 && isDollar(topic))
    if (pos > n) return false // the topic has fewer levels than the filter
    let end = topic.indexOf(SLASH, pos)
    if (end === -1) end = n
    if (level.kind === Kind.One) {
      if (i === 0 && isDollar(topic)) return false
    } else {
      const text = level.kind === Kind.Literal ? level.text : level.kind === Kind.User ? user : clientId
      if (text === undefined || text.length !== end - pos || !topic.startsWith(text, pos)) return false
    }
    pos = end + 1
  }
  return pos === n + 1
}

/**
 * Does the compiled filter cover every topic a requested subscription filter
 * (already split into levels) can match? Used at SUBSCRIBE time: allow rules
 * must cover the request, deny rules refuse a request they cover. Wildcards in
 * the request are wildcards (a literal "+" in a rule never covers them).
 * Conservative: answers false when unsure.
 */
export function coversFilter(filter: Compiled, request: readonly string[], user: string | undefined, clientId: string): boolean {
  const dollar = request.length > 0 && isDollar(request[0]!)
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i]!
    if (level.kind === Kind.Many) return !(i === 0 && dollar)
    if (i >= request.length) return false
    const r = request[i]!
    if (r === '#') return false
    if (level.kind === Kind.One) {
      if (i === 0 && dollar) return false
      continue
    }
    if (r === '+') return false
    const text = level.kind === Kind.Literal ? level.text : level.kind === Kind.User ? user : clientId
    if (text === undefined || text !== r) return false
  }
  return request.length === filter.length
}

/** count of levels in a topic or filter (a/b/c = 3), without splitting */
export function levelCount(topic: string): number {
  let levels = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) levels++
  return levels
}
