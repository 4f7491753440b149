/**
 * One node's retained messages by topic level (as Mosquitto's retain tree): a SUBSCRIBE reads the
 * branches its filter names, not every retained topic. Pure: no I/O.
 *
 * aedes-persistence's memory store keeps them in one Map and answers every filter, a topic
 * without wildcards included, by testing each stored topic against it (a QlobberTrue per call):
 * with 100,000 retained messages a SUBSCRIBE cost a node 31-61 ms and ~42 ms of CPU (seam row P17,
 * seam/memory-retained.ts, puts this tree in its place).
 *
 * Matching is the spec's: `+` is one level, an empty one included [MQTT-4.7.1-3]; `#` is the level
 * it stands at and every level under it, its parent too [MQTT-4.7.1-2]; a filter that starts with
 * a wildcard matches no topic that starts with `$` [MQTT-4.7.2-1].
 */

import { isDollar, parentOf, wildcardAt } from './topic-filter.js'
import { TopicOrder, compareTopics, prefixRange } from './topic-order.js'

interface Level<T> {
  children: Map<string, Level<T>>
  value?: T
  /** the topic of `value` */
  topic?: string
}

export class RetainTree<T> {
  private readonly root: Level<T> = { children: new Map() }
  private count = 0
  private readonly order = new TopicOrder(
    (topic) => this.get(topic) !== undefined,
    () => this.topicsUnder(this.root),
  )

  get size(): number {
    return this.count
  }

  /** the value of `topic` replaced (or added) */
  set(topic: string, value: T): void {
    let node = this.root
    for (const name of topic.split('/')) {
      let next = node.children.get(name)
      if (!next) node.children.set(name, (next = { children: new Map() }))
      node = next
    }
    if (node.value === undefined) {
      this.count++
      node.topic = topic
      this.order.added(topic)
    }
    node.value = value
  }

  /** the value of `topic` removed; levels left empty go with it */
  delete(topic: string): void {
    const names = topic.split('/')
    const path: Level<T>[] = [this.root]
    for (const name of names) {
      const next = path[path.length - 1]!.children.get(name)
      if (!next) return
      path.push(next)
    }
    const leaf = path[path.length - 1]!
    if (leaf.value === undefined) return
    leaf.value = undefined
    leaf.topic = undefined
    this.count--
    this.order.deleted()
    for (let i = names.length; i > 0; i--) {
      const node = path[i]!
      if (node.value !== undefined || node.children.size > 0) break
      path[i - 1]!.children.delete(names[i - 1]!)
    }
  }

  get(topic: string): T | undefined {
    let node: Level<T> | undefined = this.root
    for (const name of topic.split('/')) {
      node = node.children.get(name)
      if (!node) return undefined
    }
    return node.value
  }

  /** the values of every topic `filter` matches */
  *match(filter: string): Generator<T> {
    if (wildcardAt(filter) === -1) {
      const v = this.get(filter)
      if (v !== undefined) yield v
      return
    }
    for (const node of this.walk(this.root, filter.split('/'), 0)) yield node.value!
  }

  private *walk(node: Level<T>, levels: string[], i: number): Generator<Level<T>> {
    if (i === levels.length) {
      if (node.value !== undefined) yield node
      return
    }
    const level = levels[i]!
    if (level === '#') {
      // the parent level too [MQTT-4.7.1-2] (the root has no value: a topic has at least one level)
      if (node.value !== undefined) yield node
      for (const [name, child] of node.children) if (i > 0 || !isDollar(name)) yield* this.all(child)
      return
    }
    if (level === '+') {
      for (const [name, child] of node.children) if (i > 0 || !isDollar(name)) yield* this.walk(child, levels, i + 1)
      return
    }
    const child = node.children.get(level)
    if (child) yield* this.walk(child, levels, i + 1)
  }

  /**
   * The topics `filter` matches, in byte order (the admin API's order, as the cluster's index
   * lists them): how many, and `limit` of them from `offset` (all without a limit). `#` and a
   * literal path and a final `/#` are read off the sorted topics without a walk (the dashboard
   * asks for `#` every 5 s); another wildcard filter walks its branches and sorts what matched.
   */
  page(filter: string, offset = 0, limit?: number): { total: number; topics: string[] } {
    const cut = (all: readonly string[], start: number, end: number) => {
      const from = Math.min(start + offset, end)
      return { total: end - start, topics: all.slice(from, limit === undefined ? end : Math.min(end, from + limit)) }
    }
    if (wildcardAt(filter) === -1) {
      const topics = this.get(filter) !== undefined ? [filter] : []
      return cut(topics, 0, topics.length)
    }
    if (filter === '#') {
      // not the `$` topics [MQTT-4.7.2-1]; they sort together, after `#` and before `%`
      const all = this.order.topics()
      const [a, b] = prefixRange(all, '$')
      if (a === b) return cut(all, 0, all.length)
      const gap = b - a
      const total = all.length - gap
      const from = Math.min(offset, total)
      const to = limit === undefined ? total : Math.min(total, from + limit)
      const before = from < a ? all.slice(from, Math.min(a, to)) : []
      return { total, topics: to > a ? before.concat(all.slice(Math.max(from, a) + gap, to + gap)) : before }
    }
    const parent = parentOf(filter)
    if (parent !== undefined) {
      // the parent level too [MQTT-4.7.1-2]: `a/b` sorts before every `a/b/...`, though not always right before
      const all = this.order.topics()
      const [a, b] = prefixRange(all, `${parent}/`)
      if (this.get(parent) === undefined) return cut(all, a, b)
      const topics = [parent].concat(all.slice(a, b))
      return cut(topics, 0, topics.length)
    }
    const topics: string[] = []
    for (const node of this.walk(this.root, filter.split('/'), 0)) topics.push(node.topic!)
    topics.sort(compareTopics)
    return cut(topics, 0, topics.length)
  }

  private *topicsUnder(node: Level<T>): Generator<string> {
    if (node.topic !== undefined) yield node.topic
    for (const child of node.children.values()) yield* this.topicsUnder(child)
  }

  private *all(node: Level<T>): Generator<Level<T>> {
    if (node.value !== undefined) yield node
    for (const child of node.children.values()) yield* this.all(child)
  }
}

