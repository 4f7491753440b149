/**
 * Which ranges of the retained topics' index a filter's topics are in (cluster/retained-ranges.ts),
 * checked against the topic matcher itself: every topic a filter matches is in its plan's ranges,
 * and for the plans counted inside Redis ('exact'), every topic in them matches.
 */
import { describe, expect, it } from 'vitest'
import { listPlan, type LexBound, type ListPlan } from '../../src/cluster/retained-ranges.js'
import { filterMatches } from '../../src/shared/names.js'
import { compareTopics } from '../../src/broker/topic-order.js'

/** ZRANGEBYLEX's bounds applied to one member, as Redis compares them (bytes) */
function inRange(topic: string, [min, max]: [LexBound, LexBound]): boolean {
  const t = Buffer.from(topic)
  const above = (b: LexBound): boolean => {
    const s = Buffer.from(b)
    if (s.toString() === '-') return true
    if (s.toString() === '+') return false
    const c = Buffer.compare(t, s.subarray(1))
    return s[0] === 0x5b ? c >= 0 : c > 0 // '[' inclusive, '(' exclusive
  }
  const below = (b: LexBound): boolean => {
    const s = Buffer.from(b)
    if (s.toString() === '+') return true
    if (s.toString() === '-') return false
    const c = Buffer.compare(t, s.subarray(1))
    return s[0] === 0x5b ? c <= 0 : c < 0
  }
  return above(min) && below(max)
}

function listed(plan: ListPlan, topics: string[]): string[] {
  if (plan.kind === 'scan') return topics.filter((t) => inRange(t, plan.range))
  return topics.filter((t) => t === plan.topic || plan.ranges.some((r) => inRange(t, r)))
}

const TOPICS = ['a', 'a/b', 'a/b/c', 'a/bc', 'a/b/c/d', 'ab', 'b/b', '$SYS/x', '$x', '%', '!', 'a/ü', 'ü/a', '/a', 'a/', '']
const FILTERS = ['#', '+', 'a', 'a/#', 'a/b/#', 'a/+', 'a/+/c', '+/b', '$SYS/#', '$SYS/+', '/#', '+/#', 'ü/#', 'a/b/c/d', 'x/#']

describe('retained index ranges of a filter', () => {
  for (const filter of FILTERS) {
    it(`${filter}: holds every topic it matches${listPlan(filter).kind === 'exact' ? ', and only those' : ''}`, () => {
      const plan = listPlan(filter)
      const levels = filter.split('/')
      const matches = TOPICS.filter((t) => t !== '' && filterMatches(levels, t))
      const inPlan = listed(plan, TOPICS.filter((t) => t !== ''))
      for (const t of matches) expect(inPlan).toContain(t)
      if (plan.kind === 'exact') expect([...inPlan].sort()).toEqual([...matches].sort())
    })
  }

  it('[MQTT-4.7.2-1] # is counted in Redis without the topics that start with $', () => {
    const plan = listPlan('#')
    expect(plan.kind).toBe('exact')
    expect(listed(plan, ['$SYS/x', '$', 'a', '!', '%'])).toEqual(['a', '!', '%'])
  })

  it('[MQTT-4.7.1-2] a/b/# is its parent a/b and the range of a/b/', () => {
    expect(listPlan('a/b/#')).toMatchObject({ kind: 'exact', topic: 'a/b' })
    expect(listPlan('a/+/#').kind).toBe('scan')
  })
})

describe('the admin API\'s order of topics (broker/topic-order.ts compareTopics)', () => {
  it('is the byte order of the UTF-8 topics, as the cluster\'s index keeps them', () => {
    const topics = ['a', 'A', 'a/b', 'ab', 'ü', '\uE000', '😀', '\uFFFF', 'a\u0000', '$x', '', 'z', '\uD7FF', 'é/😀', 'é/\uF000']
    const bytes = [...topics].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect([...topics].sort(compareTopics)).toEqual(bytes)
  })
})
