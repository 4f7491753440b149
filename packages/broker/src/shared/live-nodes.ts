/**
 * Which nodes a shared subscription's members may be picked on (cluster mode), from the node
 * registry (cluster/registry.ts: `culex:nodes`, each node scored with the Redis time its
 * registration lapses). Pure: shared/index.ts reads the registry and the time.
 *
 * A node is dead once its registration lapsed, whether the registry still lists it (a score in
 * the past) or the will sweeper dropped it since. A node missing from the registry whose last
 * registration seen here had not lapsed yet is still live: a Redis that came back without its data
 * (cluster/redis-data-loss.ts) lists no node until each beats again, and a node that took every
 * other node's members for dead then picked nobody for their groups' messages and dropped
 * acknowledged QoS 1 ones. If it really died, its last registration lapses on time. A node never
 * seen is new, hence live (its members must not be skipped, nor swept, in the moment between its
 * registration and the next read).
 */
export class LiveNodes {
  /** every node seen in the registry, with the time its last registration seen lapses */
  private readonly deadlines = new Map<string, number>()
  /** Redis' time at the last read */
  private now = -Infinity

  constructor(private readonly self: string) {}

  /** `flat`: the registry as ZRANGE WITHSCORES returns it; `now`: Redis' time, ms */
  update(flat: string[], now: number): void {
    for (let i = 0; i < flat.length; i += 2) this.deadlines.set(flat[i]!, Number(flat[i + 1]))
    this.now = now
  }

  isLive(node: string): boolean {
    if (node === this.self) return true
    const deadline = this.deadlines.get(node)
    return deadline === undefined || deadline >= this.now
  }
}
