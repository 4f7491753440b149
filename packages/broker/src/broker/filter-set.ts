/**
 * A multiset of topic filters that answers whether any of them matches a topic name (one trie
 * walk, qlobber's QlobberTrue: a filter is in the trie while its count is above 0). Used for the
 * subscriptions that exist, on this node and on the others (broker/no-subscribers.ts).
 */
import { createRequire } from 'node:module'
import type { QlobberTrue as QlobberTrueType } from 'qlobber'

const require = createRequire(import.meta.url)
const { QlobberTrue } = require('qlobber') as { QlobberTrue: typeof QlobberTrueType }

export class FilterSet {
  private readonly counts = new Map<string, number>()
  private readonly trie = new QlobberTrue({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })

  /** true when the filter was not in the set before */
  add(filter: string): boolean {
    const n = this.counts.get(filter) ?? 0
    this.counts.set(filter, n + 1)
    if (n === 0) this.trie.add(filter)
    return n === 0
  }

  /** true when the filter is no longer in the set */
  remove(filter: string): boolean {
    const n = this.counts.get(filter)
    if (n === undefined) return false
    if (n > 1) {
      this.counts.set(filter, n - 1)
      return false
    }
    this.counts.delete(filter)
    this.trie.remove(filter)
    return true
  }

  /** some filter of the set matches the topic name */
  test(topic: string): boolean {
    return this.counts.size > 0 && this.trie.test(topic)
  }

  clear(): void {
    this.counts.clear()
    this.trie.clear()
  }

  filters(): IterableIterator<string> {
    return this.counts.keys()
  }

  get size(): number {
    return this.counts.size
  }
}
