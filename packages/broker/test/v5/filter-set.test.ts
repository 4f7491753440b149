/**
 * broker/filter-set.ts, the per-topic memory of its answers (issue 11: one trie walk per v5
 * QoS 1/2 PUBLISH for 0x10 No matching subscribers): bounded, never older than the set, right
 * while topics that never repeat make it stand aside. Answers against the node's own
 * subscriptions: test/v5/puback-codes*.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { CACHE_MAX, CACHE_TOPIC_MAX, FilterSet } from '../../src/broker/filter-set.js'

describe('FilterSet answers remembered per topic', () => {
  it('bounded to CACHE_MAX topics of at most CACHE_TOPIC_MAX characters; topics that never repeat still get the right answer', () => {
    const set = new FilterSet()
    set.add('dev/+/cmd')
    for (let i = 0; i < CACHE_MAX * 6; i++) {
      expect(set.test(`dev/${i}/cmd`)).toBe(true)
      expect(set.test(`dev/${i}/state`)).toBe(false)
      expect(set.remembered).toBeLessThanOrEqual(CACHE_MAX)
    }
    const long = `dev/${'x'.repeat(CACHE_TOPIC_MAX)}/cmd`
    const before = set.remembered
    expect(set.test(long)).toBe(true)
    expect(set.remembered).toBe(before)
  })

  it('a filter entering or leaving the set forgets every answer; a second copy of a filter changes nothing', () => {
    const set = new FilterSet()
    expect(set.test('a/b')).toBe(false)
    set.add('x/#')
    expect([set.test('a/b'), set.test('a/b')]).toEqual([false, false])
    expect(set.remembered).toBe(1)
    set.add('a/+')
    expect(set.remembered).toBe(0)
    expect([set.test('a/b'), set.test('a/b')]).toEqual([true, true])
    set.add('a/+')
    set.remove('a/+')
    expect(set.remembered).toBe(1)
    expect(set.test('a/b')).toBe(true)
    set.remove('a/+')
    expect(set.test('a/b')).toBe(false)
    set.clear()
    expect([set.remembered, set.test('x/y')]).toEqual([0, false])
  })
})
