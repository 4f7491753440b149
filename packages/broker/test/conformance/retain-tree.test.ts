/**
 * One node's retained messages by topic level (broker/retain-tree.ts, seam row P17): what a filter
 * gets from the tree is what the spec's matcher (topicMatches) says, for 3,000 random filters over
 * a random set of topics with empty levels and `$` topics; stores and deletes keep the count.
 */
import { describe, expect, it } from 'vitest'
import { RetainTree } from '../../src/broker/retain-tree.js'
import { topicMatches } from '../../src/broker/conformance-qos.js'

describe('RetainTree', () => {
  it('[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1] a filter gets exactly the topics the spec matches it with', () => {
    let seed = 20261203
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
    const names = ['a', 'b', '', '$SYS', '$x', 'ü', 'c']
    const topics = new Set<string>()
    for (let i = 0; i < 300; i++) topics.add(Array.from({ length: 1 + rnd(4) }, () => names[rnd(names.length)]).join('/'))
    const tree = new RetainTree<string>()
    for (const t of topics) tree.set(t, t)
    expect(tree.size).toBe(topics.size)
    for (let i = 0; i < 3000; i++) {
      const n = 1 + rnd(4)
      const filter = Array.from({ length: n }, (_, k) => (rnd(4) === 0 ? '+' : k === n - 1 && rnd(3) === 0 ? '#' : names[rnd(names.length)])).join('/')
      const want = [...topics].filter((t) => topicMatches(filter, t)).sort()
      expect({ filter, got: [...tree.match(filter)].sort() }).toEqual({ filter, got: want })
    }
  })

  it('replaces, deletes and counts; levels left empty go, their siblings stay', () => {
    const tree = new RetainTree<number>()
    tree.set('a/b/c', 1)
    tree.set('a/b', 2)
    tree.set('a/b/c', 3)
    expect(tree.size).toBe(2)
    expect([...tree.match('a/#')].sort()).toEqual([2, 3])
    tree.delete('a/b/c')
    tree.delete('a/b/c')
    tree.delete('x/y')
    expect(tree.size).toBe(1)
    expect([...tree.match('#')]).toEqual([2])
    tree.delete('a/b')
    expect(tree.size).toBe(0)
    expect([...tree.match('#')]).toEqual([])
    expect(tree.get('a')).toBeUndefined()
  })
})
