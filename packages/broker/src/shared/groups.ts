/**
 * The membership of every shared subscription group, as one node knows it: kept in memory
 * (single node: the only copy; cluster: a cache of Redis, kept current by change notifications,
 * share-store.ts), so the member for each message is picked with no round trip. No I/O here.
 */
import { filterMatches, filterOfKey } from './names.js'
import { pickMember, type PickContext, type Strategy } from './strategy.js'

export interface Member {
  clientId: string
  /** node the member is (or was last) connected to */
  node: string
  /** QoS the member subscribed with: it gets messages at most at this QoS */
  qos: number
  online: boolean
  /** a clean session: it leaves the group when its connection ends */
  clean: boolean
}

interface Group {
  key: string
  levels: string[]
  members: Map<string, Member>
  /** online members sorted by client id; undefined = recompute */
  online?: Member[]
  /** round robin position on this node */
  turn: number
}

function allLive(members: readonly Member[], live: (node: string) => boolean): boolean {
  for (const m of members) if (!live(m.node)) return false
  return true
}

export class ShareGroups {
  private readonly groups = new Map<string, Group>()

  /** how many groups have members (online or not) */
  get size(): number {
    return this.groups.size
  }

  /** add or replace a member */
  set(key: string, m: Member): void {
    let g = this.groups.get(key)
    if (!g) {
      g = { key, levels: filterOfKey(key).split('/'), members: new Map(), turn: 0 }
      this.groups.set(key, g)
    }
    g.members.set(m.clientId, m)
    g.online = undefined
  }

  remove(key: string, clientId: string): void {
    const g = this.groups.get(key)
    if (!g || !g.members.delete(clientId)) return
    g.online = undefined
    if (g.members.size === 0) this.groups.delete(key)
  }

  get(key: string, clientId: string): Member | undefined {
    return this.groups.get(key)?.members.get(clientId)
  }

  /** replace everything (a reload from Redis) */
  reset(entries: Iterable<[string, Member]>): void {
    const turns = new Map([...this.groups].map(([k, g]) => [k, g.turn]))
    this.groups.clear()
    for (const [key, m] of entries) this.set(key, m)
    for (const [k, g] of this.groups) g.turn = turns.get(k) ?? 0
  }

  /** keys of the groups whose filter matches the topic */
  match(topic: string): string[] {
    const out: string[] = []
    for (const g of this.groups.values()) if (filterMatches(g.levels, topic)) out.push(g.key)
    return out
  }

  members(key: string): Member[] {
    return [...(this.groups.get(key)?.members.values() ?? [])]
  }

  keys(): string[] {
    return [...this.groups.keys()]
  }

  /** online members, sorted by client id (the same order on every node) */
  online(key: string): Member[] {
    const g = this.groups.get(key)
    if (!g) return []
    g.online ??= [...g.members.values()].filter((m) => m.online).sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
    return g.online
  }

  /** the group has members that are offline with a persistent session (messages wait for them) */
  hasOfflinePersistent(key: string): boolean {
    for (const m of this.groups.get(key)?.members.values() ?? []) if (!m.online && !m.clean) return true
    return false
  }

  /**
   * The member that gets a message, among the online ones on live nodes except `exclude`
   * (a member whose connection just ended); advances the group's round robin position. `ctx`
   * gets the group's turn written into it (one context serves every group of a message).
   */
  pick(key: string, strategy: Strategy, ctx: Omit<PickContext, 'turn'>, live: (node: string) => boolean, exclude?: string): Member | undefined {
    const g = this.groups.get(key)
    if (!g) return undefined
    let candidates = g.online ?? this.online(key)
    if (exclude !== undefined || !allLive(candidates, live)) candidates = candidates.filter((m) => m.clientId !== exclude && live(m.node))
    // the caller's context, with this group's turn (no copy per message and group)
    const withTurn = ctx as PickContext
    withTurn.turn = g.turn++
    return pickMember(strategy, candidates, withTurn)
  }

  /** summary per group, for metrics and `culex cluster status` */
  summary(): Array<{ key: string; members: number; online: number }> {
    return [...this.groups.values()].map((g) => ({ key: g.key, members: g.members.size, online: this.online(g.key).length }))
  }
}
