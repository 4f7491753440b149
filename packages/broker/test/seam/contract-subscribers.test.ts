/**
 * Contract of seam/aedes-subscribers.ts localSubscriberTest (docs/internals.md, row E4): Aedes adds
 * a client's subscription to mqemitter's matcher (`broker.mq._matcher`) as a listener named
 * `handlePacketSubscription`, wrapped in `deliverSharp` for a filter that starts with a wildcard;
 * its own `$SYS` listeners have other names. So the routing trie says whether a client holds a
 * matching subscription, without a second trie.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

const namesFor = (broker: Aedes, topic: string): string[] =>
  (broker as unknown as { mq: { _matcher: { match(t: string): Array<{ name: string }> } } }).mq._matcher.match(topic).map((f) => f.name)

describe('seam contract: E4 a client subscription in mqemitter _matcher, by listener name', () => {
  it('E4 a subscription is the listener handlePacketSubscription (deliverSharp for a wildcard first level); Aedes\' $SYS listeners are not', async () => {
    const s = await stockBroker()
    const { raw } = await rawClient(s.port, { clientId: 'e4' })
    await rawSubscribe(raw, 'e4/exact', 1)
    await rawSubscribe(raw, '+/e4wild', 0, 2)
    expect(namesFor(s.broker, 'e4/exact')).toEqual(['handlePacketSubscription'])
    expect(namesFor(s.broker, 'x/e4wild')).toEqual(['deliverSharp'])
    const sys = namesFor(s.broker, `$SYS/${s.broker.id}/new/clients`)
    expect(sys.length).toBeGreaterThan(0)
    expect(sys).not.toContain('handlePacketSubscription')
    expect(sys).not.toContain('deliverSharp')
  })

  it('E4 localSubscriberTest: true while a client holds a matching subscription, a wildcard first level not for a `$` topic [MQTT-4.7.2-1]; false once it is unsubscribed', async () => {
    const s = await stockBroker()
    const has = seam.localSubscriberTest(s.broker)
    const { raw } = await rawClient(s.port, { clientId: 'e4b' })
    expect(has('e4/exact')).toBe(false)
    await rawSubscribe(raw, 'e4/exact', 1)
    await rawSubscribe(raw, '+/e4wild', 0, 2)
    expect([has('e4/exact'), has('e4/other'), has('x/e4wild'), has('$x/e4wild')]).toEqual([true, false, true, false])
    expect(has(`$SYS/${s.broker.id}/new/clients`)).toBe(false)
    raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['e4/exact', '+/e4wild'] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'unsuback'), 5000, 'UNSUBACK')
    await new Promise((r) => setImmediate(r))
    expect([has('e4/exact'), has('x/e4wild')]).toEqual([false, false])
  })
})
