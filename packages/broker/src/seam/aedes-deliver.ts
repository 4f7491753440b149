/**
 * The seam to Aedes 2.0.0-beta.1's per-client deliveries (docs/internals.md, row C13): a copy of
 * lib/client.js `deliverQoS` / `deliverQoS0` and lib/write.js `write` that writes a message in the
 * turn it is delivered instead of one `setImmediate` later. test/seam/contract-deliver.test.ts
 * checks that the stock functions are still the ones copied here (their source) and what the copy
 * does.
 *
 * Why: Aedes defers every delivery (`setImmediate(() => { new QoSPacket(...); write(...) })`, "give
 * nodejs some time to clear stacks"), then write() defers the delivery's callback once more. The
 * stack the comment is about is mqemitter's: a callback called synchronously would let the emitter
 * take its next message in the same stack. The copy keeps the callback deferred (write() still
 * calls it through `setImmediate`, or on 'drain' when the socket is full, and a message not
 * forwarded still gets `setImmediate(cb)`), so the stack stays as deep as one delivery; only the
 * write moves into the turn. One Immediate and one closure less per delivery, and no bound
 * `_onError` per QoS 1/2 delivery (QoSPacket makes one that deliverQoS replaces at once) (issue 15).
 *
 * What is still written one turn later, as stock Aedes does (so nothing else changes):
 * - every delivery of a persistent session (`clean` false): its QoS 1/2 messages wait for the
 *   session store (`outgoingUpdate`) and a QoS 0 one written at once would overtake them;
 * - a delivery while the client has a SUBSCRIBE whose SUBACK is not written yet: the new
 *   subscription's first messages come after its SUBACK, as with stock Aedes (the emitter has the
 *   subscription one turn before Aedes writes the SUBACK);
 * - a delivery while a deferred one of the same client waits: deliveries keep their order.
 * Upstream could do the same in lib/client.js (no issue found).
 */
import { createRequire } from 'node:module'
import type { Client } from 'aedes'
import type { DeliveredPacket, Done } from './aedes-client.js'
import { mqttPacket } from './mqtt-packet-debug.js'

const require = createRequire(import.meta.url)
/** aedes-packet, the copy Aedes itself loads (lib/client.js, lib/qos-packet.js) */
const Packet = createRequire(require.resolve('aedes'))('aedes-packet') as new (original: object, broker: unknown) => OutPacket

interface OutPacket {
  topic: string
  qos: number
  retain: boolean
  messageId?: number
  writeCallback?: Done
}
/** Aedes' Client (lib/client.js): what the copied functions read */
interface DeliveringClient {
  id: string | null
  clean: boolean
  connecting: boolean
  connected: boolean
  errored: boolean
  _wireVersion: number | null
  _nextId: number
  duplicates: Record<string, number>
  subscriptions: Record<string, { qos?: number } | undefined>
  conn: NodeJS.WritableStream
  broker: {
    authorizeForward(client: unknown, packet: unknown): object | null | undefined | false
    persistence: {
      outgoingUpdate(client: unknown, packet: unknown): Promise<unknown>
      outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown>
    }
  }
  deliver0(packet: DeliveredPacket, cb: Done): void
  waitForDrain(cb: (err: Error | null, client: unknown) => void): void
  emit(event: string, err: Error): void
  _onError(err?: Error | null): void
}
type Forward = DeliveredPacket & { clientId?: string; nl?: boolean }
/**
 * the callback of a delivery nobody waits for (the cluster bus hands its peers' messages to the
 * listeners with it, cluster/bus.ts): the delivery steps skip the `setImmediate` that would call it
 * (one Immediate less per delivery); any other callback is called as before
 */
export const UNWATCHED: Done = () => {}
/** call `cb` in a later turn (not at all for UNWATCHED) */
export function later(cb: Done): void {
  if (cb !== UNWATCHED) setImmediate(cb)
}
/** per Client: SUBSCRIBEs whose SUBACK is not written yet, deliveries deferred and not yet written (absent = 0) */
const SUBSCRIBING = Symbol('culex.subscribing')
const DEFERRED = Symbol('culex.deferred')
type Counted = DeliveringClient & { [SUBSCRIBING]?: number; [DEFERRED]?: number }

/** a SUBSCRIBE reaches Aedes (a parser hook of every client, run last, client-hooks.ts) */
export function subscribeHandled(packet: { cmd: string }, client: Client): undefined {
  if (packet.cmd === 'subscribe') {
    const c = client as unknown as Counted
    c[SUBSCRIBING] = (c[SUBSCRIBING] ?? 0) + 1
  }
  return undefined
}
/** a SUBACK is written (a write hook of every client, client-hooks.ts) */
export function subackWritten(packet: { cmd: string }, client: Client): void {
  const c = client as unknown as Counted
  if (packet.cmd === 'suback' && c[SUBSCRIBING]) c[SUBSCRIBING]--
}
/** write this delivery one turn later, as stock Aedes does (see above) */
function defer(c: Counted): boolean {
  return !c.clean || !!c[SUBSCRIBING] || !!c[DEFERRED]
}
type WriteToStream = (packet: object, stream: NodeJS.WritableStream, opts: unknown) => boolean

// lib/write.js WRITE_OPTS: mqtt-packet's options per wire version (held PUBACKs keep them)
const WRITE_OPTS: Record<number, { protocolVersion: number }> = {
  3: Object.freeze({ protocolVersion: 3 }),
  4: Object.freeze({ protocolVersion: 4 }),
  5: Object.freeze({ protocolVersion: 5 }),
}
const mp = mqttPacket as unknown as { writeToStream: WriteToStream }

/** lib/write.js `write` (the version cached at CONNECT): `done` is called in a later turn, or on 'drain' */
export function write(client: DeliveringClient, packet: object, done: (err: Error | null, client: unknown) => void): void {
  let error: Error | null = null
  if (client.connecting || client.connected) {
    try {
      // read at call time, as lib/write.js does: mqtt-writes.ts wraps it
      const result = mp.writeToStream(packet, client.conn, WRITE_OPTS[client._wireVersion ?? 4])
      if (!result && !client.errored) {
        client.waitForDrain(done)
        return
      }
    } catch (e) {
      error = new Error('packet received not valid', { cause: e })
    }
  } else {
    error = new Error('connection closed')
  }
  setImmediate(done, error, client)
}

/**
 * Per Client: the completions of deliveries written in this turn, run together in one later turn
 * (`setImmediate`, once per client and turn) instead of one Immediate and one closure per delivery
 * (lib/write.js). They run in the order they were written, and still never within the write
 * (the mqemitter stack above). A delivery that failed, or waits for 'drain', completes on its own.
 */
const WRITTEN = Symbol('culex.written')
type Completing = DeliveringClient & { [WRITTEN]?: Done[] }

function completeLater(c: Completing, done: Done): void {
  if (done === UNWATCHED) return
  const q = c[WRITTEN]
  if (q !== undefined) {
    q.push(done)
    return
  }
  c[WRITTEN] = [done]
  setImmediate(complete, c)
}
function complete(c: Completing): void {
  const q = c[WRITTEN]!
  // completions that write again (the guard releasing held deliveries) queue for a later turn
  c[WRITTEN] = undefined
  for (let i = 0; i < q.length; i++) {
    try {
      q[i]!()
    } catch (err) {
      // as with an Immediate each: the ones after it still run
      for (let j = i + 1; j < q.length; j++) completeLater(c, q[j]!)
      throw err
    }
  }
}

/**
 * write() for a delivery: `written` (no error: a delivery's callback never gets one, mqemitter would
 * throw it) runs in a later turn with the client's other completions, or on 'drain'; a write
 * error goes first to the client (`qos`: its 'error' event, as writeQoS; else `_onError`, as deliverQoS0)
 */
function writeDelivery(c: Completing, packet: object, written: Done, qos: boolean): void {
  let error: Error | null = null
  if (c.connecting || c.connected) {
    try {
      const result = mp.writeToStream(packet, c.conn, WRITE_OPTS[c._wireVersion ?? 4])
      if (result || c.errored) {
        completeLater(c, written)
        return
      }
      c.waitForDrain((err) => writeFailed(c, err, written, qos))
      return
    } catch (e) {
      error = new Error('packet received not valid', { cause: e })
    }
  } else {
    error = new Error('connection closed')
  }
  setImmediate(writeFailed, c, error, written, qos)
}
function writeFailed(c: DeliveringClient, err: Error | null, written: Done, qos: boolean): void {
  if (qos) {
    if (err) c.emit('error', err)
  } else c._onError(err)
  written()
}

/** lib/client.js getToForwardPacket and dedupe */
function toForward(client: DeliveringClient, packet: Forward): object | null | undefined | false {
  // no local [MQTT-3.8.3-3]
  if (packet.clientId === client.id && packet.nl) return undefined
  const id = packet.brokerId
  if (id) {
    const counter = packet.brokerCounter as number
    if (!((client.duplicates[id] ?? 0) < counter)) return false
    client.duplicates[id] = counter
  }
  return client.broker.authorizeForward(client, packet)
}

/** lib/client.js deliverQoS0, writing in this turn */
export function deliverQoS0InTurn(client: Client, packet: DeliveredPacket, cb: Done): void {
  const c = client as unknown as Counted
  const forward = toForward(c, packet)
  if (!forward) {
    later(cb)
    return
  }
  if (defer(c)) {
    c[DEFERRED] = (c[DEFERRED] ?? 0) + 1
    setImmediate(deferred0, c, forward, cb)
    return
  }
  send0(c, forward, cb)
}
function deferred0(c: Counted, forward: object, cb: Done): void {
  c[DEFERRED]!--
  send0(c, forward, cb)
}
function send0(c: DeliveringClient, forward: object, cb: Done): void {
  const out = new Packet(forward, c.broker)
  out.qos = 0
  writeDelivery(c, out, cb, false)
}

/** lib/client.js deliverQoS (QoSPacket inlined: lib/qos-packet.js), writing in this turn */
export function deliverQoSInTurn(client: Client, packet: DeliveredPacket, cb: Done): void {
  const c = client as unknown as Counted
  // downgrade to QoS 0 if requested by publish
  if (packet.qos === 0) {
    c.deliver0(packet, cb)
    return
  }
  const forward = toForward(c, packet)
  if (forward) {
    if (defer(c)) {
      c[DEFERRED] = (c[DEFERRED] ?? 0) + 1
      setImmediate(deferredQoS, c, forward, cb)
    } else sendQoS(c, forward, cb)
  } else {
    if (c.clean === false) c.broker.persistence.outgoingClearMessageId(c, packet).then(noop, noop)
    later(cb)
  }
}
function deferredQoS(c: Counted, forward: object, cb: Done): void {
  c[DEFERRED]!--
  sendQoS(c, forward, cb)
}
/** lib/client.js deliverQoS, what it does in its setImmediate (lib/qos-packet.js inlined) */
function sendQoS(c: DeliveringClient, forward: object, cb: Done): void {
  const out = new Packet(forward, c.broker)
  const id = (forward as { messageId?: number }).messageId
  if (!id) {
    out.messageId = c._nextId
    c._nextId = c._nextId >= 65535 ? 1 : c._nextId + 1
  } else {
    out.messageId = id
  }
  // downgrading to the client's subscription QoS if needed
  const sub = c.subscriptions[out.topic]
  if (sub && (sub.qos ?? 0) < out.qos) out.qos = sub.qos ?? 0
  out.writeCallback = cb
  if (c.clean || out.retain) {
    writeQoS(null, c, out)
  } else {
    const doWrite = (err: unknown = null): void => writeQoS(err as Error | null, c, out)
    c.broker.persistence.outgoingUpdate(c, out).then(() => doWrite(), doWrite)
  }
}

/** lib/client.js writeQoS */
function writeQoS(err: Error | null, client: DeliveringClient, packet: OutPacket): void {
  if (err) {
    client.emit('error', err)
    packet.writeCallback!() // not the error: mqemitter would throw it
    return
  }
  writeDelivery(client, packet, packet.writeCallback!, true)
}

function noop(): void {}

