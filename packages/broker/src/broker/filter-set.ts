/**
 * A multiset of topic filters that answers whether any of them matches a topic name (one trie
 * walk, qlobber's QlobberTrue: a filter is in the trie while its count is above 0). Used for the
 * subscriptions that exist, on this node and on the others (broker/no-subscribers.ts,
 * cluster/interest.ts), asked once per MQTT 5 QoS 1/2 PUBLISH.
 *
 * Answers are remembered per topic name while the set's filters stay the same (issue 11: the
 * trie walk, which splits the topic into an array of levels, was most of what v5 cost over 3.1.1
 * per message; a publisher usually sends to the same few topics): any filter that enters or
 * leaves the trie forgets them all, so an answer is never older than the set. Bounded: at most
 * CACHE_MAX topics of at most CACHE_TOPIC_MAX characters are remembered (about 1 MB at worst);
 * when full it is emptied, and while topics hardly repeat (more misses than hits until it
 * filled) it is left unused for the next CACHE_MAX * 4 answers, so topics that never repeat cost
 * about the walk alone.
 */
import { createRequire } from 'node:module'
import type { QlobberTrue as QlobberTrueType } from 'qlobber'

const require = createRequire(import.meta.url)
const { QlobberTrue } = require('qlobber') as { QlobberTrue: typeof QlobberTrueType }

/** qlobber set to MQTT topic filters (`+`, `#` that also matches its parent level [MQTT-4.7.1-2], empty levels) */
export const MQTT_QLOBBER_OPTIONS = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true }

export const CACHE_MAX = 2048
export const CACHE_TOPIC_MAX = 256

export class FilterSet {
  private readonly counts = new Map<string, number>()
  private readonly trie = new QlobberTrue(MQTT_QLOBBER_OPTIONS)
  /** topic name -> the trie's answer, for the filters the set holds now */
  private readonly answers = new Map<string, boolean>()
  private hits = 0
  /** answers left to give without the cache (topics that hardly repeat) */
  private bypass = 0

  /** true when the filter was not in the set before */
  add(filter: string): boolean {
    const n = this.counts.get(filter) ?? 0
    this.counts.set(filter, n + 1)
    if (n === 0) {
      this.trie.add(filter)
      this.forget()
    }
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
    this.forget()
    return true
  }

  /** some filter of the set matches the topic name */
  test(topic: string): boolean {
    if (this.counts.size === 0) return false
    if (this.bypass > 0) {
      this.bypass--
      return this.trie.test(topic)
    }
    const known = this.answers.get(topic)
    if (known !== undefined) {
      this.hits++
      return known
    }
    const answer = this.trie.test(topic)
    if (topic.length <= CACHE_TOPIC_MAX) {
      if (this.answers.size >= CACHE_MAX) {
        // filled with more misses than hits: topics hardly repeat, walk without it for a while
        if (this.hits < CACHE_MAX) this.bypass = CACHE_MAX * 4
        this.forget()
      }
      this.answers.set(topic, answer)
    }
    return answer
  }

  clear(): void {
    this.counts.clear()
    this.trie.clear()
    this.forget()
  }

  filters(): IterableIterator<string> {
    return this.counts.keys()
  }

  get size(): number {
    return this.counts.size
  }

  /** topic names whose answer is remembered now (at most CACHE_MAX) */
  get remembered(): number {
    return this.answers.size
  }

  /** the remembered answers no longer hold (or the cache was full) */
  private forget(): void {
    if (this.answers.size > 0) this.answers.clear()
    this.hits = 0
  }
}
