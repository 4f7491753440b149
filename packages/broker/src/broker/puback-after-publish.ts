/**
 * PUBACK only once a QoS 1 message is safe [MQTT-4.3.2-2].
 *
 * Aedes (1.2 and the 2.0 beta) writes the PUBACK of an incoming QoS 1 PUBLISH *before* it
 * publishes the message (lib/handlers/publish.js): in a cluster a node killed
 * between the two has acknowledged a message that never reached Redis (the
 * cluster bus, the offline queues of persistent sessions), and the publisher
 * will not send it again. Here the PUBACK bytes are held back until the
 * publish has completed (the `published` hook, the last step of Aedes'
 * publish: delivered locally, accepted by Redis, queued for offline
 * sessions), and PUBACKs still leave in the order their PUBLISHes arrived
 * [MQTT-4.6.0-2].
 *
 * How: the connection's writes are held back by the seam (seam/mqtt-writes.ts holdWrites,
 * over mqtt-packet's process-wide writeToStream), PUBACKs only; the queue is installed on each
 * Client first (seam/aedes-install.ts CLIENT_INSTALL_ORDER 'puback-hold').
 * Cost: one string comparison per packet written.
 *
 * A held PUBACK is written from the `published` hook, outside Aedes' own
 * try/catch around writes (lib/write.js): a write that throws destroys that
 * connection here rather than unwinding into the emitter (issue 16).
 */
import type { Writable } from 'node:stream'
import type { Aedes } from 'aedes'
import { flushWrites } from '../listeners/write-batching.js'
import { holdWrites, installOnEachClient, writePacket, writePackets, type OutPacket } from '../seam/index.js'

type Stream = NodeJS.WritableStream
interface Pending {
  messageId: number
  packet: OutPacket
  /** writeToStream's options (the protocol level: a v5 PUBACK carries its reason code) */
  opts: unknown
  done: boolean
}

const queues = new WeakMap<Stream, Pending[]>()
/** while releaseTogether runs: the connections whose PUBACKs it let go, with their queues */
let together: Map<Stream, Pending[]> | undefined

/**
 * Run `release` (the emit callbacks of a cluster bus batch, cluster/bus.ts): the PUBACKs it lets go
 * leave when it returns, each connection's in one buffer and one write (a publisher's window of
 * 20 was 20 chunks of 4 bytes for the socket's writev), instead of at the end of the event-loop
 * turn's poll phase (listeners/write-batching.ts), after whatever else that phase reads
 */
export function releaseTogether(release: () => void): void {
  if (together) return release()
  const conns = (together = new Map())
  try {
    release()
  } finally {
    together = undefined
    for (const [conn, queue] of conns) {
      write(queue, conn)
      flushWrites(conn as Writable)
    }
  }
}

export interface PubackHold {
  /** from then on, PUBACKs on this broker's connections wait for `completed` */
  attach(broker: Aedes): void
  /**
   * the publish of `packet` by `client` has completed: its PUBACK may go (call it from the
   * published hook), with `reasonCode` for an MQTT 5 client (0x10 No matching subscribers)
   */
  completed(client: unknown, packet: { qos?: number; messageId?: number }, reasonCode?: number): void
}

/**
 * one function holds the PUBACKs of every connection; a connection's queue is made at its first
 * PUBACK (issue 15: no closure, context nor queue per idle connection)
 */
function holdPuback(packet: OutPacket, opts: unknown, stream: Stream): boolean {
  if (packet.cmd !== 'puback') return false
  let queue = queues.get(stream)
  if (!queue) queues.set(stream, (queue = []))
  // MQTT 5: a PUBACK with a failure reason code (0x87 not authorized) answers a message that
  // is not published: it waits for no publish, only for the PUBACKs before it [MQTT-4.6.0-2]
  const refused = (packet.reasonCode ?? 0) >= 0x80
  queue.push({ messageId: packet.messageId!, packet, opts, done: refused })
  if (refused) flush(queue, stream)
  return true
}

/**
 * `onHeld`: a QoS 1 PUBLISH's PUBACK was held, so its publish follows in Aedes' next step (the
 * cluster bus batches by it: cluster/bus.ts `expect`)
 */
export function pubackAfterPublish(onHeld?: () => void): PubackHold {
  // one function per broker, still none per connection
  const hold = onHeld === undefined
    ? holdPuback
    : (packet: OutPacket, opts: unknown, stream: Stream): boolean => {
        if (!holdPuback(packet, opts, stream)) return false
        // a refused PUBACK (MQTT 5, 0x87) answers a message that is not published
        if ((packet.reasonCode ?? 0) < 0x80) onHeld()
        return true
      }
  return {
    attach(broker) {
      installOnEachClient(broker, 'puback-hold', (_client, stream) => holdWrites(stream, hold))
    },
    completed(client, packet, reasonCode) {
      if (packet.qos !== 1 || packet.messageId === undefined) return
      const conn = (client as { conn?: Stream }).conn
      const queue = conn && queues.get(conn)
      if (!queue) return
      for (const p of queue) {
        if (p.messageId === packet.messageId && !p.done) {
          p.done = true
          // a fresh PubAck of Aedes' (lib/handlers/publish.js), written with protocolVersion 5 only to v5 clients
          if (reasonCode) p.packet.reasonCode = reasonCode
          break
        }
      }
      flush(queue, conn)
    },
  }
}

/**
 * the PUBACKs at the head of the queue whose publish has completed may go, in PUBLISH order: now,
 * or once releaseTogether's callbacks have all run
 */
function flush(queue: Pending[], conn: Stream): void {
  if (queue.length === 0 || !queue[0]!.done) return
  if (together) together.set(conn, queue)
  else write(queue, conn)
}

/** write the PUBACKs at the head of the queue whose publish has completed, in one write when they are several */
function write(queue: Pending[], conn: Stream): void {
  let n = 0
  while (n < queue.length && queue[n]!.done) n++
  if (n === 0) return
  try {
    // one node: each publish completes in its own immediate, one PUBACK at a time (no array made)
    if (n === 1) {
      const p = queue.shift()!
      return void writePacket(p.packet, conn, p.opts)
    }
    const out = queue.splice(0, n)
    // Aedes writes a connection's acks with one options object (lib/write.js, by protocol level)
    let from = 0
    for (let i = 1; i <= n; i++) {
      if (i < n && out[i]!.opts === out[from]!.opts) continue
      const packets: OutPacket[] = new Array(i - from)
      for (let k = from; k < i; k++) packets[k - from] = out[k]!.packet
      writePackets(packets, conn, out[from]!.opts)
      from = i
    }
  } catch {
    queue.length = 0
    ;(conn as unknown as { destroy(): void }).destroy()
  }
}
