/**
 * Contract of seam/aedes-fixes.ts (docs/internals.md rows U1-U3): aedes 1.2.0 fixes that
 * 2.0.0-beta.1 lacks, put back from outside. Each test first shows the stock beta still lacks the
 * fix (when that expectation fails, upstream has it: drop the row), then that the seam's
 * version works on a stock broker through the internals it relies on.
 */
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

const fixed = (limit = 3) => (broker: Aedes) => seam.restoreAedes12Fixes(broker, { maxInflightInbound: limit })
/** aedes-persistence's memory store, as Aedes builds it by default */
/** a Client's own filters (lib/client.js `subscriptions`) */
const subsOf = (c: unknown): Record<string, unknown> => (c as { subscriptions: Record<string, unknown> }).subscriptions
const memory = createRequire(import.meta.url)('aedes-persistence') as () => Record<string, (...a: unknown[]) => Promise<unknown>>

describe('seam contract: aedes 1.2.0 fixes on 2.0.0-beta.1', () => {
  it('U1 aedes broker.clients / brokers and client.subscriptions / duplicates: plain objects on the beta, prototype-free with the fix (GHSA-52qw-whmv-87c5)', async () => {
    const stock = await stockBroker()
    await rawClient(stock.port, { clientId: 'u1' })
    const b = stock.broker as unknown as Record<string, object>
    expect(Object.getPrototypeOf(b.clients), 'stock broker.clients still a plain object (if not: upstream fixed it, drop U1)').toBe(Object.prototype)
    const s = await stockBroker({}, fixed())
    const { raw } = await rawClient(s.port, { clientId: 'constructor' })
    const fb = s.broker as unknown as Record<string, object>
    for (const map of [fb.clients, fb.brokers, subsOf(s.clients[0])])
      expect(Object.getPrototypeOf(map)).toBe(null)
    await rawSubscribe(raw, 'toString', 1)
    expect(Object.keys(subsOf(s.clients[0]))).toEqual(['toString'])
  })

  it('U1 aedes lib/handlers/subscribe.js assigns packet.subscriptions once after its _dedupe, then reads it: the SUBACK follows the request', async () => {
    const stock = await stockBroker()
    const a = await rawClient(stock.port, { clientId: 'u1-stock' })
    a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'b', qos: 0 }, { topic: '7', qos: 1 }] })
    await a.raw.until((ps) => ps.some((p) => p.cmd === 'suback'))
    expect(a.raw.packets.find((p) => p.cmd === 'suback')!.granted, 'stock _dedupe reorders integer-like filters (if not: upstream fixed it)').toEqual([1, 0])
    const s = await stockBroker({}, fixed())
    const { raw } = await rawClient(s.port, { clientId: 'u1-dedupe' })
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'b', qos: 0 }, { topic: '7', qos: 1 }, { topic: 'b', qos: 2 }, { topic: '__proto__', qos: 1 }] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'))
    // as aedes 1.2.0: a repeated filter once, its last QoS at its first place
    expect(raw.packets.find((p) => p.cmd === 'suback')!.granted).toEqual([2, 1, 1])
  })

  it('U1 aedes calls persistence.subscriptionsByClient (looked up at call time) for a session restore', async () => {
    const persistence = memory()
    const s = await stockBroker({ persistence }, fixed())
    const first = await rawClient(s.port, { clientId: 'u1-restore', clean: false })
    await rawSubscribe(first.raw, '__proto__', 1, 1)
    await rawSubscribe(first.raw, 'x', 1, 2)
    await first.raw.drop()
    const back = await rawClient(s.port, { clientId: 'u1-restore', clean: false })
    expect(back.connack.sessionPresent).toBe(true)
    await eventually(() => (Object.keys(subsOf(s.clients[1])).length === 2 ? true : undefined), 3000, 'both filters restored')
  })

  it('U2 no maxInflightInbound on the beta; with the fix the QoS 2 PUBLISH over the window closes the client, PUBCOMP frees a slot', async () => {
    const stock = await stockBroker({ maxInflightInbound: 1 } as object)
    const a = await rawClient(stock.port, { clientId: 'u2-stock' })
    for (let id = 1; id <= 3; id++) a.raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: id })
    await a.raw.until((ps) => ps.filter((p) => p.cmd === 'pubrec').length === 3, 3000, 'three PUBRECs (if not: upstream has a window again, drop U2)')
    const s = await stockBroker({}, fixed(2))
    const { raw } = await rawClient(s.port, { clientId: 'u2' })
    raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: 2 })
    // a retransmission takes no second slot
    raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: 2, dup: true })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'pubrec').length === 3)
    expect(seam.clientFacts(s.clients[0]!).inboundInflight).toBe(2)
    raw.send({ cmd: 'pubrel', messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pubcomp'))
    expect(seam.clientFacts(s.clients[0]!).inboundInflight).toBe(1)
    raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: 3 })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'pubrec').length === 4)
    raw.send({ cmd: 'publish', topic: 'u2', payload: 'x', qos: 2, messageId: 4 })
    await raw.until(() => raw.closed, 3000, 'closed over the window')
  })

  it('U3 the memory store aedes itself loads is aedes-persistence 11 with cleanIncoming (root package.json overrides; the beta asks for ^10.3, which has none)', () => {
    const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'))
    const pkg = fromAedes('aedes-persistence/package.json') as { version: string }
    expect(pkg.version, 'package-lock.json: no nested node_modules/aedes/node_modules/aedes-persistence').toMatch(/^11\./)
    expect(typeof (fromAedes('aedes-persistence') as () => { cleanIncoming?: unknown })().cleanIncoming).toBe('function')
  })

  it('U3 no cleanIncoming on the beta; with the fix a clean session drops its inbound QoS 2 state at its start (client event, _cleanStart) and, when its connection received a QoS 2 PUBLISH (U2\'s _inboundInflight), at its end (clientDisconnect)', async () => {
    const calls: string[] = []
    const counting = (): ReturnType<typeof memory> => {
      const p = memory()
      const own = p.cleanIncoming!.bind(p)
      p.cleanIncoming = (c: unknown) => (calls.push((c as { id: string }).id), own(c))
      return p
    }
    const stock = await stockBroker({ persistence: counting() })
    const a = await rawClient(stock.port, { clientId: 'u3-stock' })
    await a.raw.drop()
    await stock.close()
    expect(calls, 'stock beta calls no cleanIncoming (if it does: upstream fixed it, drop U3)').toEqual([])
    const s = await stockBroker({ persistence: counting() }, fixed())
    const { raw } = await rawClient(s.port, { clientId: 'u3' })
    expect((s.clients[0] as unknown as { _cleanStart?: boolean })._cleanStart).toBe(true)
    expect(calls).toEqual(['u3'])
    raw.send({ cmd: 'publish', topic: 'u3', payload: 'x', qos: 2, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pubrec'))
    await raw.drop()
    await eventually(() => (calls.length === 2 ? true : undefined), 3000, 'cleanIncoming at the end')
    // no QoS 2 PUBLISH on the connection: nothing stored since the start's delete, none at the end
    const none = await rawClient(s.port, { clientId: 'u3-none' })
    expect(calls).toEqual(['u3', 'u3', 'u3-none'])
    const gone = new Promise<void>((resolve) => s.broker.on('clientDisconnect', (c) => c.id === 'u3-none' && resolve()))
    await none.raw.drop()
    await gone
    // U3's delete would be asked in a microtask after the event: the next check phase comes after it
    await new Promise((r) => setImmediate(r))
    expect(calls).toEqual(['u3', 'u3', 'u3-none'])
  })

  it('U4 aedes lib/handlers/pubrel.js chains .finally on incomingDelPacket: a PUBREL twice in one batch leaves "no such packet" unhandled on the beta, settled with the fix', async () => {
    const rejections: unknown[] = []
    const onRejection = (reason: unknown): void => void rejections.push(reason)
    process.on('unhandledRejection', onRejection)
    try {
      const twice = async (s: Awaited<ReturnType<typeof stockBroker>>, id: string): Promise<void> => {
        const { raw } = await rawClient(s.port, { clientId: id })
        raw.send({ cmd: 'publish', topic: 'u4', payload: 'x', qos: 2, messageId: 1 })
        await raw.until((ps) => ps.some((p) => p.cmd === 'pubrec'))
        const pubrel = mqttPacket.generate({ cmd: 'pubrel', messageId: 1 } as mqttPacket.Packet)
        raw.socket.write(Buffer.concat([pubrel, pubrel]))
        await raw.until((ps) => ps.filter((p) => p.cmd === 'pubcomp').length === 2)
        // a later round trip: any rejection of the two deletes has surfaced by then
        raw.send({ cmd: 'pingreq' })
        await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'))
        await new Promise((r) => setImmediate(r))
      }
      await twice(await stockBroker(), 'u4-stock')
      expect(rejections.map((r) => (r as Error).message), 'stock beta leaves the second delete unhandled (if not: upstream fixed it, drop U4)').toContain('no such packet')
      rejections.length = 0
      const settled: string[] = []
      await twice(await stockBroker({}, (b) => seam.restoreAedes12Fixes(b, { maxInflightInbound: 0, onSettledError: (e, call) => void settled.push(`${call}: ${e.message}`) })), 'u4')
      expect(rejections).toEqual([])
      expect(settled).toEqual(['incomingDelPacket: no such packet'])
    } finally {
      process.off('unhandledRejection', onRejection)
    }
  })
})
