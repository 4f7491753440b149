/**
 * Contract of seam/aedes-broker.ts cacheTopicMatches (docs/internals.md, row E3): mqemitter matches
 * each message's topic with `broker.mq._matcher.match(topic)`, read at call time, and changes the
 * subscriptions only through the matcher's add / remove / clear; so a cache emptied by those three
 * answers what the trie would, also right after a subscription comes or goes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

type Matcher = { match(topic: string): unknown[]; add: unknown; remove: unknown; clear: unknown }
const matcherOf = (broker: Aedes): Matcher => (broker as unknown as { mq: { _matcher: Matcher } }).mq._matcher

describe('seam contract: E3 mqemitter _matcher.match cached per topic', () => {
  it('E3 mqemitter _matcher: match(topic) read at call time for every message; add / remove / clear are its only changes', async () => {
    const topics: string[] = []
    const s = await stockBroker({}, (broker) => {
      const m = matcherOf(broker)
      for (const f of ['match', 'add', 'remove', 'clear'] as const) expect(typeof m[f], f).toBe('function')
      const match = m.match.bind(m)
      m.match = (topic: string) => (topics.push(topic), match(topic))
    })
    const { raw } = await rawClient(s.port, { clientId: 'e3a' })
    raw.send({ cmd: 'publish', topic: 'e3/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    expect(topics).toContain('e3/t')
  })

  it('E3 with the cache, each message reaches the subscriptions that exist when it is published: one added, then removed, after the topic was matched', async () => {
    const s = await stockBroker({}, (broker) => seam.cacheTopicMatches(broker))
    const got = (r: Raw): string[] => r.publishes().map((p) => String(p.payload))
    const { raw: pub } = await rawClient(s.port, { clientId: 'e3-pub' })
    const { raw: a } = await rawClient(s.port, { clientId: 'e3-a' })
    const { raw: b } = await rawClient(s.port, { clientId: 'e3-b' })
    await rawSubscribe(a, 'e3/+', 0)
    let n = 0
    const publish = async (payload: string): Promise<void> => {
      pub.send({ cmd: 'publish', topic: 'e3/t', payload, qos: 1, messageId: ++n })
      await pub.until((ps) => ps.filter((p) => p.cmd === 'puback').length === n)
    }
    await publish('1')
    await publish('2') // e3/t matched twice: the second from the cache
    await rawSubscribe(b, 'e3/t', 0)
    await publish('3')
    b.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['e3/t'] })
    await b.until((ps) => ps.some((p) => p.cmd === 'unsuback'))
    await publish('4')
    await a.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 4)
    // a has the 4th: b, had it still been subscribed, would have had it from the same emit
    expect(got(a)).toEqual(['1', '2', '3', '4'])
    expect(got(b)).toEqual(['3'])
  })
})
