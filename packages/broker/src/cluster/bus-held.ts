/**
 * Held episodes of the cluster bus (bus-delivery.ts): from the first batch whose PUBLISH reached
 * fewer links than it must until none is held any more, reported once (logged at info by
 * backend.ts: `cluster bus: held messages until every node had them`).
 */

export interface HeldEpisode {
  /** batches held */
  batches: number
  /** of which released after MAX_HOLD_MS without every node having them */
  released: number
  /** from the first short PUBLISH reply until the last held batch was settled */
  ms: number
}

export class HeldEpisodes {
  private episode: (HeldEpisode & { start: number }) | undefined

  constructor(private readonly onHeld: (info: HeldEpisode) => void) {}

  /** a batch is held from `since` on */
  held(since: number): void {
    this.episode ??= { batches: 0, released: 0, ms: 0, start: since }
    this.episode.batches++
  }

  /** a held batch was released without every node having it */
  released(): void {
    if (this.episode) this.episode.released++
  }

  /** a held batch was settled: the episode is over once none of `outstanding` is held */
  settled(outstanding: Iterable<{ short: boolean }>): void {
    if (!this.episode) return
    for (const o of outstanding) if (o.short) return
    const { start, ...info } = this.episode
    this.episode = undefined
    this.onHeld({ ...info, ms: Date.now() - start })
  }
}
