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

interface Level<T> {
  children: Map<string, Level<T>>
  value?: T
}

export class RetainTree<T> {
  private readonly root: Level<T> = { children: new Map() }
  private count = 0

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
    if (node.value === undefined) this.count++
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
    this.count--
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
    if (filter.indexOf('+') === -1 && filter.indexOf('#') === -1) {
      const v = this.get(filter)
      if (v !== undefined) yield v
      return
    }
    yield* this.walk(this.root, filter.split('/'), 0)
  }

  private *walk(node: Level<T>, levels: string[], i: number): Generator<T> {
    if (i === levels.length) {
      if (node.value !== undefined) yield node.value
      return
    }
    const level = levels[i]!
    if (level === '#') {
      // the parent level too [MQTT-4.7.1-2] (the root has no value: a topic has at least one level)
      if (node.value !== undefined) yield node.value
      for (const [name, child] of node.children) if (i > 0 || name.charCodeAt(0) !== DOLLAR) yield* this.all(child)
      return
    }
    if (level === '+') {
      for (const [name, child] of node.children) if (i > 0 || name.charCodeAt(0) !== DOLLAR) yield* this.walk(child, levels, i + 1)
      return
    }
    const child = node.children.get(level)
    if (child) yield* this.walk(child, levels, i + 1)
  }

  private *all(node: Level<T>): Generator<T> {
    if (node.value !== undefined) yield node.value
    for (const child of node.children.values()) yield* this.all(child)
  }
}

const DOLLAR = 36
