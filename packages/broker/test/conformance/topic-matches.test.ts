/**
 * The topic matcher of the granted-QoS step and of v5 subscription identifiers
 * (broker/conformance-qos.ts topicMatches), which walks both strings without splitting them:
 * the spec's examples, and 20,000 random filter/topic pairs against a plain split-based reading
 * of section 4.7.
 */
import { describe, expect, it } from 'vitest'
import { topicMatches } from '../../src/broker/topic-filter.js'

/** section 4.7, read plainly: split both and compare level by level */
function reference(filter: string, topic: string): boolean {
  if (filter === topic) return true
  if ((filter[0] === '#' || filter[0] === '+') && topic[0] === '$') return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

describe('topicMatches', () => {
  it('[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1] the spec examples', () => {
    const yes: Array<[string, string]> = [
      ['sport/tennis/player1/#', 'sport/tennis/player1'], ['sport/tennis/player1/#', 'sport/tennis/player1/ranking'],
      ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon'], ['sport/#', 'sport'], ['#', 'sport/tennis'],
      ['sport/tennis/+', 'sport/tennis/player1'], ['sport/+', 'sport/'], ['+/+', '/finance'], ['/+', '/finance'], ['+', 'a'],
      ['$SYS/#', '$SYS/x'], ['$SYS/+', '$SYS/x'], ['+/monitor/Clients', 'x/monitor/Clients'], ['a//b', 'a//b'], ['a/+/b', 'a//b'],
    ]
    const no: Array<[string, string]> = [
      ['sport/tennis/+', 'sport/tennis/player1/ranking'], ['sport/+', 'sport'], ['+', '/finance'], ['#', '$SYS/x'], ['+/monitor/Clients', '$SYS/monitor/Clients'],
      ['a/b', 'a/bc'], ['a/bc', 'a/b'], ['a/b/c', 'a/b'], ['a/+', 'a/b/c'], ['+', '$x'], ['a', 'A'], ['$share/g/a', 'a'],
    ]
    for (const [f, t] of yes) expect([f, t, topicMatches(f, t)]).toEqual([f, t, true])
    for (const [f, t] of no) expect([f, t, topicMatches(f, t)]).toEqual([f, t, false])
  })

  it('agrees with the split-based reading on 20,000 random pairs', () => {
    let seed = 20261203
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
    const levels = ['a', 'b', 'ab', '', '$', '$SYS', 'ü']
    const topic = (): string => Array.from({ length: 1 + rnd(4) }, () => levels[rnd(levels.length)]).join('/')
    const filter = (): string => {
      const n = 1 + rnd(4)
      return Array.from({ length: n }, (_, i) => (rnd(5) === 0 ? '+' : i === n - 1 && rnd(4) === 0 ? '#' : levels[rnd(levels.length)])).join('/')
    }
    for (let i = 0; i < 20_000; i++) {
      const [f, t] = [filter(), topic()]
      if (topicMatches(f, t) !== reference(f, t)) expect({ f, t, got: topicMatches(f, t) }).toEqual({ f, t, got: reference(f, t) })
    }
  })
})
