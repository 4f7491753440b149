/**
 * One node's retained messages by topic level (broker/retain-tree.ts, seam row P17): what a filter
 * gets from the tree is what the spec's matcher (topicMatches) says, for 3,000 random filters over
 * a random set of topics with empty levels and `$` topics; stores and deletes keep the count; the
 * admin API's pages (`page`) are those topics in UTF-8 byte order, through adds, deletes and re-adds
 * between reads and through more changes than the set holds without a read.
 */
import { describe, expect, it } from 'vitest'
import { RetainTree } from '../../src/broker/retain-tree.js'
import { topicMatches } from '../../src/broker/topic-filter.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

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

  it('[MQTT-4.7.1-2] [MQTT-4.7.2-1] pages list what a filter matches in byte order of the UTF-8 topics, with its total, through changes between reads', () => {
    let seed = 20261204
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
    // '-' and '.' sort before '/', so `a-b` comes between `a` and `a/b`; surrogates against U+E000-U+FFFF
    const names = ['a', 'a-b', 'a.b', 'b', '', '$SYS', '$x', 'ü', '\u{1F600}', '\uFF01', '!x']
    const topics = new Set<string>()
    const tree = new RetainTree<string>()
    const filters = ['#', 'a/#', 'a-b/#', '$SYS/#', '+/#', 'a/+', '+', 'a', 'a/b', '/#', '+/a/#', 'ü/#']
    for (let round = 0; round < 40; round++) {
      // a round of changes: mostly adds, some deletes and re-adds; round 20 adds more topics than the set holds
      if (round === 20) {
        for (let i = 0; i < 3000; i++) {
          tree.set(`a/n${i}`, 'n')
          topics.add(`a/n${i}`)
        }
        for (let i = 0; i < 3000; i += 3) {
          tree.delete(`a/n${i}`)
          topics.delete(`a/n${i}`)
        }
      }
      for (let i = 1 + rnd(60); i > 0; i--) {
        const t = Array.from({ length: 1 + rnd(3) }, () => names[rnd(names.length)]).join('/')
        if (rnd(4) === 0) {
          tree.delete(t)
          topics.delete(t)
        } else {
          tree.set(t, t)
          topics.add(t)
        }
      }
      for (const filter of filters) {
        const want = [...topics].filter((t) => topicMatches(filter, t)).sort(byBytes)
        const offset = rnd(want.length + 2)
        const limit = 1 + rnd(20)
        expect({ filter, ...tree.page(filter, offset, limit) }).toEqual({ filter, total: want.length, topics: want.slice(offset, offset + limit) })
        expect({ filter, ...tree.page(filter) }).toEqual({ filter, total: want.length, topics: want })
      }
    }
    expect(tree.size).toBe(topics.size)
  })
})
