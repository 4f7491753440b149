/**
 * Contract of seam/client-close.ts and seam/memory-connect.ts with Aedes 2.0.0-beta.1 and
 * aedes-persistence's memory store (docs/internals.md rows C19, C20, P12): what every connection
 * made or asked and did not need is left out, and the connection still closes, its will and
 * session are still what they were. Stock Aedes broker, raw MQTT clients; the close hooks are
 * registered before `broker.handle`, as the node's socket tracker does.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes, Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { onStreamClose } from '../../src/listeners/close-hooks.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

type Internals = Client & { _eos: () => void; _pendingDrains: unknown[] }
const internals = (c: Client): Internals => c as Internals

/** a stock broker whose sockets have close hooks before Aedes (as listeners/tcp.ts); `before` runs first */
async function hooked(before?: (b: Aedes) => void) {
  return stockBroker({}, (b: Aedes) => {
    before?.(b)
    const handle = b.handle
    b.handle = (stream, req) => {
      onStreamClose(stream as Socket, () => {})
      return handle.call(b, stream, req)
    }
  })
}
const disconnected = (b: Aedes) => new Promise<string>((resolve) => b.once('clientDisconnect', (c: Client) => resolve(c.id)))

describe('seam contract: the connect path (C19, C20, P12)', () => {
  it('C19 lib/client.js watches its socket with node:stream finished(conn, close.bind(client)): for a broker registered, no watch is made (NO_WATCH) and C14 closes the Client from the close hooks', async () => {
    let eos: unknown
    let finishListeners = -1
    const s = await hooked((b) => {
      seam.skipEndOfStreamWatch(b)
      seam.installOnEachClient(b, 'idle', (c) => {
        eos = internals(c)._eos
        finishListeners = (c.conn as Socket).listenerCount('finish')
        expect(seam.closeOnStreamClose(c)).toBe(true)
      })
    })
    await rawClient(s.port, { clientId: 'c19' })
    expect(eos).toBe(seam.NO_WATCH)
    // end-of-stream listens to 'finish' (the socket itself does not)
    expect(finishListeners).toBe(0)
    const gone = disconnected(s.broker)
    ;(s.clients[0]!.conn as Socket).destroy()
    expect(await gone).toBe('c19')
  })

  it('C19 a broker not registered keeps Aedes\' own end-of-stream watch', async () => {
    // the replacement is process-wide once installed: install it for another broker first
    await hooked((b) => seam.skipEndOfStreamWatch(b))
    let eos: unknown
    const s = await hooked((b) => seam.installOnEachClient(b, 'idle', (c) => (eos = internals(c)._eos)))
    await rawClient(s.port, { clientId: 'c19-own' })
    expect(typeof eos).toBe('function')
    expect(eos).not.toBe(seam.NO_WATCH)
    const gone = disconnected(s.broker)
    ;(s.clients[0]!.conn as Socket).destroy()
    expect(await gone).toBe('c19-own')
  })

  it('C20 lib/client.js close makes its Error, then calls _eos before any listener runs: the Error has no stack trace, the limit is back for the clientDisconnect listeners and after', async () => {
    const s = await hooked((b) => {
      seam.skipEndOfStreamWatch(b)
      seam.installOnEachClient(b, 'idle', (c) => seam.closeOnStreamClose(c))
    })
    await rawClient(s.port, { clientId: 'c20' })
    const c = internals(s.clients[0]!)
    expect(c._eos).toBe(seam.NO_WATCH)
    expect(c._pendingDrains).toEqual([])
    const limit = Error.stackTraceLimit
    let inListener = -1
    s.broker.once('clientDisconnect', () => (inListener = Error.stackTraceLimit))
    seam.closeClient(c)
    await eventually(() => (inListener >= 0 ? true : undefined), 3000, 'clientDisconnect')
    expect(inListener).toBe(limit)
    expect(Error.stackTraceLimit).toBe(limit)
    expect(c.closed).toBe(true)
  })

  it('C20 a drain callback still waiting gets Aedes\' own Error, with its stack trace', async () => {
    const s = await hooked((b) => {
      seam.skipEndOfStreamWatch(b)
      seam.installOnEachClient(b, 'idle', (c) => seam.closeOnStreamClose(c))
    })
    await rawClient(s.port, { clientId: 'c20-drain' })
    const c = internals(s.clients[0]!)
    const got = new Promise<Error>((resolve) => c._pendingDrains.push((err: Error) => resolve(err)))
    seam.closeClient(c)
    const err = await got
    expect(err.message).toBe('connection closed')
    expect(err.stack).toContain('at ')
  })

  it('P12 while nothing of its kind was stored, cleanSubscriptions and delWill answer at once; a persistent session\'s subscriptions are still cleaned by a clean CONNECT [MQTT-3.1.2-6]', async () => {
    let persistence: { delWill(c: unknown): Promise<unknown> } | undefined
    const s = await stockBroker({}, (b) => {
      expect(seam.skipEmptyConnectCleanups(b)).toBe(true)
      persistence = (b as unknown as { persistence: typeof persistence }).persistence
    })
    expect(seam.incomingNeverStored(s.broker)).toBe(true)
    const first = persistence!.delWill({ id: 'x' })
    expect(persistence!.delWill({ id: 'y' })).toBe(first)
    await rawClient(s.port, { clientId: 'p12-clean' })
    // a persistent session's subscription: the store holds it now
    const sub = await rawClient(s.port, { clientId: 'p12-kept', clean: false })
    await rawSubscribe(sub.raw, 'p12/t', 1)
    const gone = once(s.broker, 'clientDisconnect')
    await sub.raw.drop()
    await gone
    const again = await rawClient(s.port, { clientId: 'p12-kept', clean: true })
    expect(again.connack.sessionPresent).toBe(false)
    const back = await rawClient(s.port, { clientId: 'p12-kept', clean: false })
    // the clean CONNECT deleted the session's subscription
    expect(back.connack.sessionPresent).toBe(false)
  })

  it('P12 once a will was stored, delWill is the store\'s again: it answers (and deletes) a connected client\'s will', async () => {
    let persistence: { delWill(c: unknown): Promise<unknown> } | undefined
    const s = await stockBroker({}, (b) => {
      seam.skipEmptyConnectCleanups(b)
      persistence = (b as unknown as { persistence: typeof persistence }).persistence
    })
    const nothing = persistence!.delWill({ id: 'p12-w' })
    expect(await nothing).toBeUndefined()
    const ready = once(s.broker, 'clientReady')
    await rawClient(s.port, { clientId: 'p12-w', will: { topic: 'p12/will', payload: Buffer.from('bye'), qos: 0, retain: false } })
    await ready
    const answer = persistence!.delWill({ id: 'p12-w' })
    expect(answer).not.toBe(nothing)
    expect(await answer).toMatchObject({ topic: 'p12/will' })
    expect(await persistence!.delWill({ id: 'p12-w' })).toBeUndefined()
  })

  it('P12 once inbound QoS 2 state was stored, incomingNeverStored is false (U3 asks the store again)', async () => {
    const s = await stockBroker({}, (b) => seam.skipEmptyConnectCleanups(b))
    const c = await rawClient(s.port, { clientId: 'p12-q2' })
    expect(seam.incomingNeverStored(s.broker)).toBe(true)
    c.raw.send({ cmd: 'publish', topic: 'p12/q2', payload: 'x', qos: 2, messageId: 3 })
    await c.raw.until((ps) => ps.some((p) => p.cmd === 'pubrec'), 3000, 'PUBREC')
    expect(seam.incomingNeverStored(s.broker)).toBe(false)
  })
})
