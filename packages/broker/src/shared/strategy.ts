/**
 * How the node that receives a PUBLISH picks the one member of a group that gets it. Pure
 * functions of the group's online members (sorted by client id) and the message.
 *
 * - round_robin (default): each member in turn (per node and group: two publishers' nodes each
 *   go round, so the share evens out over the cluster).
 * - random: uniformly at random.
 * - local_first: a member on this node if there is one (round robin among them), else round
 *   robin among all; saves the hop to another node.
 * - hash_clientid / hash_topic: the same publisher, or the same topic, always gets the same
 *   member while the membership stays (rendezvous hashing: when a member leaves, only its keys
 *   move), which keeps their messages in order.
 */

export const STRATEGIES = ['round_robin', 'random', 'local_first', 'hash_clientid', 'hash_topic'] as const
export type Strategy = (typeof STRATEGIES)[number]

export interface Candidate {
  clientId: string
  node: string
}

export interface PickContext {
  /** this node's id (local_first) */
  node: string
  topic: string
  /** the publisher's client id; undefined for wills of dead nodes' clients */
  publisher?: string
  /** round robin position of this group on this node; the caller increments it */
  turn: number
  /** [0, 1) */
  random: () => number
}

/** FNV-1a, 32 bits */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** the member with the highest hash of (key, member): stable as members come and go */
export function rendezvous<T extends Candidate>(members: readonly T[], key: string): T | undefined {
  let best: T | undefined
  let bestScore = -1
  for (const m of members) {
    const score = fnv1a(`${key}\u0000${m.clientId}`)
    if (score > bestScore || (score === bestScore && best !== undefined && m.clientId < best.clientId)) {
      best = m
      bestScore = score
    }
  }
  return best
}

/** the member that gets the message; undefined when there is none */
export function pickMember<T extends Candidate>(strategy: Strategy, members: readonly T[], ctx: PickContext): T | undefined {
  const n = members.length
  if (n === 0) return undefined
  if (n === 1) return members[0]
  switch (strategy) {
    case 'random':
      return members[Math.floor(ctx.random() * n) % n]
    case 'local_first': {
      const local = members.filter((m) => m.node === ctx.node)
      const from = local.length > 0 ? local : members
      return from[ctx.turn % from.length]
    }
    case 'hash_clientid':
      return rendezvous(members, ctx.publisher ?? ctx.topic)
    case 'hash_topic':
      return rendezvous(members, ctx.topic)
    default:
      return members[ctx.turn % n]
  }
}
