/**
 * Contract of the seam's routing functions with Aedes (seam/aedes-routing.ts, docs/internals.md rows
 * A13-A16), which shared subscriptions use: one test per internal, named after it, against a stock
 * Aedes broker and raw MQTT clients.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
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
