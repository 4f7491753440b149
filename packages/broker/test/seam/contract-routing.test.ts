/**
 * Contract of the seam's routing functions with Aedes (seam/aedes-routing.ts, docs/internals.md rows
 * A13-A16, A18, A27), which shared subscriptions use: one test per internal, named after it, against a stock
 * Aedes broker and raw MQTT clients.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

describe('seam contract: Aedes routing internals', () => {
  it("A13 aedes broker.mq.on('#'): a listener of the emitter gets every published message; the remover stops it", async () => {
    const s = await stockBroker()
    const seen: string[] = []
    const stop = seam.onEveryMessage(s.broker, (m, cb) => {
      seen.push((m as { topic: string }).topic)
      cb()
    })
    const { raw } = await rawClient(s.port, { clientId: 'a12' })
    raw.send({ cmd: 'publish', topic: 'a12/one', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    expect(seen).toContain('a12/one')
    stop()
    raw.send({ cmd: 'publish', topic: 'a12/two', payload: 'x', qos: 1, messageId: 2 })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === 2)
    expect(seen).not.toContain('a12/two')
  })

  it("A13 aedes broker.mq.removeListener('#', fn, done): the listener gets messages until done runs, none from then on; one added again in done gets each message once", async () => {
    const s = await stockBroker()
    const seen: string[] = []
    const listener = (m: unknown, cb: () => void): void => {
      seen.push((m as { topic: string }).topic)
      cb()
    }
    const emit = (topic: string): unknown => seam.emitMessage(s.broker, { cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false }, () => {})
    const stop = seam.onEveryMessage(s.broker, listener)
    await new Promise<void>((resolve) => {
      stop(() => {
        emit('a13/off')
        seam.onEveryMessage(s.broker, listener)
        emit('a13/again')
        resolve()
      })
      emit('a13/removing')
    })
    expect(seen).toEqual(['a13/removing', 'a13/again'])
  })

  it('A14 aedes broker.persistence.outgoingUpdate / outgoingClearMessageId: looked up at call time for a persistent session delivery and its PUBACK', async () => {
    const s = await stockBroker()
    const calls: string[] = []
    seam.wrapOutgoingAcks(s.broker, (own) => ({
      outgoingUpdate: (c, p) => (calls.push(`update:${p.messageId}`), own.outgoingUpdate(c, p)),
      outgoingClearMessageId: (c, p) => (calls.push(`clear:${p.messageId}`), own.outgoingClearMessageId(c, p)),
    }))
    const { raw } = await rawClient(s.port, { clientId: 'a13', clean: false })
    await rawSubscribe(raw, 'a13/t', 1)
    const { raw: pub } = await rawClient(s.port, { clientId: 'a13-pub' })
    pub.send({ cmd: 'publish', topic: 'a13/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    const id = raw.publishes()[0]!.messageId as number
    expect(calls).toContain(`update:${id}`)
    raw.send({ cmd: 'puback', messageId: id })
    await eventually(() => (calls.includes(`clear:${id}`) ? true : undefined), 3000, 'outgoingClearMessageId on PUBACK')
  })

  it("A27 aedes broker.persistence.outgoingEnqueue before the client's deliverQoS: the QoS 2 message is its session's, sent again with its packet id when the session returns, then only its PUBREL once PUBRECed, nothing once PUBCOMPed", async () => {
    const s = await stockBroker()
    const back = async (): Promise<Raw> => (await rawClient(s.port, { clientId: 'a26', clean: false })).raw
    // connected: Aedes' replay of the (empty) session queue at CONNECT is over
    const ready = new Promise((resolve) => s.broker.once('clientReady', resolve))
    const { raw } = await rawClient(s.port, { clientId: 'a26', clean: false })
    await ready
    const packet = { cmd: 'publish', topic: 'a26/t', payload: Buffer.from('kept'), qos: 2, retain: false, dup: false, brokerId: 'a26-origin', brokerCounter: 7 }
    await seam.keepInSession(s.broker, 'a26', packet)
    seam.deliveryOf(s.clients[0]!).deliverQoS(packet, () => {})
    await raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the delivery')
    const id = raw.publishes()[0]!.messageId as number
    await raw.drop()
    // the session store had it before the write: its replay sends it again, same id
    const again = await back()
    await again.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the message again')
    expect(again.publishes().map((p) => [String(p.payload), p.messageId])).toEqual([['kept', id]])
    again.send({ cmd: 'pubrec', messageId: id })
    await again.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 3000, 'the PUBREL')
    await again.drop()
    const rel = await back()
    await rel.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 3000, 'the PUBREL again')
    expect(rel.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel').map((p) => [p.cmd, p.messageId])).toEqual([['pubrel', id]])
    rel.send({ cmd: 'pubcomp', messageId: id })
    rel.send({ cmd: 'pingreq' })
    await rel.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
    await rel.drop()
    const done = await back()
    done.send({ cmd: 'pingreq' })
    await done.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
    expect(done.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel')).toEqual([])
  })

  it('A15 aedes broker.closed: false while serving, true once broker.close() starts', async () => {
    const s = await stockBroker()
    expect(seam.brokerClosing(s.broker)).toBe(false)
    const closing = s.close()
    expect(seam.brokerClosing(s.broker)).toBe(true)
    await closing
  })

  it("A16 aedes client.closed: true when the broker emits 'clientDisconnect' for it", async () => {
    const s = await stockBroker()
    const seen: boolean[] = []
    s.broker.on('clientDisconnect', (c: Client) => seen.push(seam.clientClosed(c)))
    const { raw } = await rawClient(s.port, { clientId: 'a15' })
    expect(seam.clientClosed(s.clients[0]!)).toBe(false)
    raw.send({ cmd: 'disconnect' })
    await eventually(() => (seen.length > 0 ? true : undefined), 3000, 'clientDisconnect')
    expect(seen).toEqual([true])
  })

  it('A18 aedes broker.subscribe / broker.unsubscribe: called with the filter of each subscription a client adds, and removes by UNSUBSCRIBE or by closing', async () => {
    const s = await stockBroker()
    const log: string[] = []
    seam.observeSubscriptions(s.broker, { added: (f) => void log.push(`+${f}`), removed: (f) => void log.push(`-${f}`) })
    const { raw } = await rawClient(s.port, { clientId: 'a18' })
    await rawSubscribe(raw, 'a18/+', 1, 1)
    await rawSubscribe(raw, 'a18/#', 0, 2)
    expect(log).toEqual(['+a18/+', '+a18/#'])
    raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['a18/+'] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'unsuback'))
    expect(log).toEqual(['+a18/+', '+a18/#', '-a18/+'])
    raw.send({ cmd: 'disconnect' })
    await eventually(() => (log.length === 4 ? true : undefined), 3000, 'the subscription removed with the connection')
    expect(log[3]).toBe('-a18/#')
  })
})
