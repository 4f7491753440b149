/**
 * Contract of seam/aedes-sys-clients.ts (docs/internals.md row A21): Aedes' per-connection $SYS
 * notices (`$SYS/<id>/new/clients`, `$SYS/<id>/disconnect/clients`), published by
 * `_finishRegisterClient` / `unregisterClient` through `this.publish`, on a stock broker with raw
 * MQTT clients: left out while nobody hears them, published as before once somebody subscribes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

/** the topics the broker emits (its emitter's emit, seam row A2), recorded without a listener */
function emitted(broker: Aedes): string[] {
  const topics: string[] = []
  seam.gateEmits(broker, (emit) => (message, cb) => (topics.push((message as { topic: string }).topic), emit(message, cb)))
  return topics
}

describe('seam contract: Aedes $SYS client notices', () => {
  it('A21 aedes _finishRegisterClient / unregisterClient: the notices are left out while unheard; the client events and other publishes still happen', async () => {
    let topics: string[] = []
    const events: string[] = []
    const s = await stockBroker({}, (broker) => {
      topics = emitted(broker)
      seam.publishClientNoticesWhenHeard(broker)
      // a publish made by a 'client' listener, inside _finishRegisterClient, is not the notice
      broker.on('client', (c) => {
        events.push(`client:${c.id}`)
        broker.publish({ cmd: 'publish', topic: `seen/${c.id}`, payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, () => {})
      })
      broker.on('clientDisconnect', (c) => events.push(`gone:${c.id}`))
    })
    const a = await rawClient(s.port, { clientId: 'a21-quiet' })
    await a.raw.drop()
    await eventually(() => (events.includes('gone:a21-quiet') ? true : undefined), 3000, 'clientDisconnect')
    expect(events).toEqual(['client:a21-quiet', 'gone:a21-quiet'])
    expect(topics).toContain('seen/a21-quiet')
    expect(topics.filter((t) => t.endsWith('/new/clients') || t.endsWith('/disconnect/clients'))).toEqual([])
  })

  it('A21 a client subscribed to $SYS/+/new/clients or $SYS/# still gets every notice', async () => {
    const s = await stockBroker({}, (broker) => seam.publishClientNoticesWhenHeard(broker))
    const id = s.broker.id
    const plus = await rawClient(s.port, { clientId: 'a21-plus' })
    await rawSubscribe(plus.raw, '$SYS/+/new/clients', 0)
    const all = await rawClient(s.port, { clientId: 'a21-all' })
    await rawSubscribe(all.raw, '$SYS/#', 0)
    const other = await rawClient(s.port, { clientId: 'a21-other' })
    await plus.raw.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === 'a21-other'), 3000, 'new/clients notice')
    expect(plus.raw.publishes().map((p) => [p.topic, String(p.payload)])).toContainEqual([`$SYS/${id}/new/clients`, 'a21-other'])
    await other.raw.drop()
    await all.raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.topic.endsWith('/disconnect/clients')), 3000, 'disconnect/clients notice')
    const seen = all.raw.publishes().map((p) => [p.topic, String(p.payload)])
    expect(seen).toContainEqual([`$SYS/${id}/new/clients`, 'a21-other'])
    expect(seen).toContainEqual([`$SYS/${id}/disconnect/clients`, 'a21-other'])
  })

  it('A21 cluster mode: new/clients always goes out; disconnect/clients only while another node may hear it', async () => {
    let topics: string[] = []
    let elsewhere = false
    const s = await stockBroker({}, (broker) => {
      topics = emitted(broker)
      seam.publishClientNoticesWhenHeard(broker, (topic) => elsewhere && topic.endsWith('/disconnect/clients'))
    })
    const gone: string[] = []
    s.broker.on('clientDisconnect', (c) => gone.push(c.id))
    const quiet = await rawClient(s.port, { clientId: 'a21-cluster-quiet' })
    await quiet.raw.drop()
    await eventually(() => (gone.includes('a21-cluster-quiet') ? true : undefined), 3000, 'clientDisconnect')
    elsewhere = true
    const heard = await rawClient(s.port, { clientId: 'a21-cluster-heard' })
    await heard.raw.drop()
    await eventually(() => (gone.includes('a21-cluster-heard') ? true : undefined), 3000, 'clientDisconnect')
    const id = s.broker.id
    expect(topics.filter((t) => t.endsWith('/new/clients') || t.endsWith('/disconnect/clients'))).toEqual([
      `$SYS/${id}/new/clients`,
      `$SYS/${id}/new/clients`,
      `$SYS/${id}/disconnect/clients`,
    ])
  })
})
