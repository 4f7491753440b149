/**
 * MQTT 5.0 flow control (4.9) on what Culex sends, byte level, in every mode: the send quota starts
 * non-zero and at most the client's Receive Maximum, for a session's queue replayed at CONNECT (on
 * the other node in two-node mode) as for live deliveries; with the quota at zero, every other
 * packet is still handled and answered at once. limits/client-guard.ts, seam/aedes-replay.ts.
 */
import { expect } from 'vitest'
import type { Any, Raw } from '../conformance/raw.js'
import { waitFor } from '../helpers/wait.js'
import { forEachMode5, test, type Mode } from './modes.js'

const publishes = (c: Raw): Any[] => c.packets.filter((p) => p.cmd === 'publish' && (p.qos ?? 0) > 0)

/** the first packet `cmd` (with `messageId`, if given) received from `from` on */
async function answer(c: Raw, cmd: string, messageId?: number, from = 0): Promise<Any> {
  const find = (): Any | undefined => c.packets.slice(from).find((p) => p.cmd === cmd && (messageId === undefined || p.messageId === messageId))
  await waitFor(() => find() !== undefined, 5000, `${cmd}${messageId === undefined ? '' : ` ${messageId}`}`)
  return find()!
}

/** a session of `id` on node 0 with `n` QoS 1 messages queued for it on `topic` */
async function queued(m: Mode, id: string, topic: string, n: number): Promise<void> {
  const s = await m.raw(0)
  await s.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await s.subscribe(topic, 1)
  await s.disconnect()
  const p = await m.raw(0)
  await p.connect({ clientId: `${id}-pub` })
  for (let i = 0; i < n; i++) await p.publish(topic, `m${i}`, 1, false, i + 1)
  p.destroy()
}

/** with its send quota at zero (`full` QoS 1 PUBLISHes unacknowledged), `c` still gets every other answer [MQTT-3.3.4-10] [MQTT-4.9.0-3] */
async function answersWithQuotaZero(m: Mode, c: Raw, full: number): Promise<void> {
  const topic = `fc-own/${m.id('t')}`
  const w = await m.raw(0)
  await w.connect({ clientId: m.id('watch') })
  await w.subscribe(topic, 1)
  const from = c.packets.length
  c.send({ cmd: 'pingreq' })
  c.send({ cmd: 'subscribe', messageId: 901, subscriptions: [{ topic: `fc-other/${m.id('t')}`, qos: 1 }] })
  c.send({ cmd: 'unsubscribe', messageId: 902, unsubscriptions: [`fc-other/${m.id('t')}`] })
  c.send({ cmd: 'publish', topic, payload: 'own1', qos: 1, messageId: 903 })
  c.send({ cmd: 'publish', topic, payload: 'own2', qos: 2, messageId: 904 })
  await answer(c, 'pingresp', undefined, from)
  expect((await answer(c, 'suback', 901, from)).granted).toEqual([1])
  await answer(c, 'unsuback', 902, from)
  await answer(c, 'puback', 903, from)
  await answer(c, 'pubrec', 904, from)
  c.send({ cmd: 'pubrel', messageId: 904 })
  await answer(c, 'pubcomp', 904, from)
  // its PUBLISHes were processed: delivered (order between QoS levels is free [MQTT-4.6.0-6])
  const delivered = [String((await w.expect('publish')).payload), String((await w.expect('publish')).payload)]
  expect(delivered.sort()).toEqual(['own1', 'own2'])
  // and still no more QoS 1 PUBLISH than the quota allowed
  expect(publishes(c).length).toBe(full)
}

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-4.9.0-1] [MQTT-3.3.4-9] the initial send quota is non-zero and at most the Receive Maximum: a resumed session\'s 30 queued messages come 1 to 5 at a time with Receive Maximum 5, one at a time with 1; all, in order, as PUBACKs come', async () => {
    for (const rm of [5, 1]) {
      const id = m.id(`fc-init${rm}`)
      const topic = `fc-init/${id}`
      await queued(m, id, topic, 30)
      const c = await m.raw(1)
      expect(await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: rm } })).toMatchObject({ sessionPresent: true })
      const got: string[] = []
      while (got.length < 30) {
        // nothing acknowledged since the last: what came meanwhile (a PINGRESP marks it) is 1 to rm
        await waitFor(() => publishes(c).length > got.length, 5000, `PUBLISH ${got.length + 1}`)
        const from = c.packets.length
        c.send({ cmd: 'pingreq' })
        await answer(c, 'pingresp', undefined, from)
        const sent = publishes(c).slice(got.length)
        expect(sent.length).toBeGreaterThanOrEqual(1)
        expect(sent.length).toBeLessThanOrEqual(rm)
        for (const p of sent) {
          got.push(String(p.payload))
          c.send({ cmd: 'puback', messageId: p.messageId })
        }
      }
      expect(got).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`))
      c.destroy()
    }
  })

  it('[MQTT-3.3.4-10] [MQTT-4.9.0-3] with the send quota at zero during a session\'s replay at CONNECT, PINGREQ, SUBSCRIBE, UNSUBSCRIBE and the client\'s own QoS 1 and 2 PUBLISHes are handled and answered at once', async () => {
    const id = m.id('fc-replay')
    await queued(m, id, `fc-replay/${id}`, 20)
    const c = await m.raw(1)
    await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 3 } })
    await waitFor(() => publishes(c).length === 3, 5000, 'the first 3 of the replay')
    await answersWithQuotaZero(m, c, 3)
  })

  it('[MQTT-3.3.4-10] [MQTT-4.9.0-3] with the send quota at zero for live deliveries, PINGREQ, SUBSCRIBE, UNSUBSCRIBE and the client\'s own QoS 1 and 2 PUBLISHes are handled and answered at once', async () => {
    const topic = `fc-live/${m.id('t')}`
    const c = await m.raw(1)
    await c.connect({ clientId: m.id('fc-live'), properties: { receiveMaximum: 2 } })
    await c.subscribe(topic, 1)
    const p = await m.raw(0)
    await p.connect({ clientId: m.id('fc-live-pub') })
    for (let i = 0; i < 5; i++) await p.publish(topic, `m${i}`, 1, false, i + 1)
    await waitFor(() => publishes(c).length === 2, 5000, 'the first 2')
    await answersWithQuotaZero(m, c, 2)
  })
})
