/**
 * Flow control from subscriber sockets back to publisher sockets, the way
 * Mosquitto does it: a node stops reading a publisher's socket while its
 * outgoing buffers are full, and TCP slows the publisher down.
 *
 * - What the node holds for delivery is counted in bytes
 *   (`counters.queuedBytes`, limits/delivery.ts: written to client sockets,
 *   not yet taken by the kernel, clients that read only).
 * - The publish gate sits in front of the emitter: while that count is at
 *   delivery_buffer_bytes, a message is not handed to the subscribers (nor to
 *   the other nodes) but held, in order, until the count is back under half
 *   of it. The same while `counters.heldDeliveries`, the QoS 1/2 deliveries
 *   waiting for room in their clients' in-flight windows, is at
 *   delivery_buffer_messages: with small messages a byte budget is a queue of
 *   many messages (1 MiB of 64-byte PUBLISHes is ~13,000, 130 ms for a
 *   subscriber that takes 100,000/s: the one-node `fanin` p99 of issue 15),
 *   while a message budget alone would cap large messages' throughput.
 *   Aedes finishes a publish only once it is emitted, and reads no
 *   further packets from that publisher before its batch of publishes is
 *   finished, so the publisher's socket is not read meanwhile.
 * - Aedes parses everything buffered on a socket as one batch
 *   (lib/client.js nextBatch: conn.read(null)), 64 KiB and more, each
 *   message fanned out to every subscriber before the gate can say no.
 *   boundReads makes each read at most READ_CHUNK bytes, so one batch is
 *   small and the node never holds much more than its budget.
 *
 * A subscriber that reads nothing leaves the count within a second
 * (limits/delivery.ts), so it cannot hold the publishers for longer.
 * Cost on the message path: one comparison per publish; a re-read of the
 * backed-up sockets every HOLD_POLL_MS only while holding.
 */
import type { Client } from 'aedes'
import type { HotCounters } from '../ops/metrics.js'
import { readLoopBusy, readNextBatch } from '../seam/index.js'

export type Done = (err?: Error | null) => void
type Emit = (message: unknown, cb: Done) => unknown

/** most bytes one read of a client socket hands to Aedes' parser */
export const READ_CHUNK = 16 * 1024
const HOLD_POLL_MS = 2

export interface PublishGate {
  /** emit `message` now, or once the delivery buffer has drained */
  emit(message: unknown, cb: Done): void
  /** messages waiting for the buffer to drain */
  readonly held: number
  /** let everything held go (shutdown) */
  releaseAll(): void
}

export function createPublishGate(counters: HotCounters, emit: Emit, high: number, highMessages: number): PublishGate {
  const low = Math.floor(high / 2)
  const lowMessages = Math.floor(highMessages / 2)
  let messages: unknown[] = []
  let callbacks: Done[] = []
  let timer: NodeJS.Timeout | undefined
  const release = (force = false): void => {
    if (!force) {
      counters.resyncBacklog()
      if (counters.queuedBytes > low || counters.heldDeliveries > lowMessages) return
    }
    clearInterval(timer)
    timer = undefined
    const m = messages
    const c = callbacks
    messages = []
    callbacks = []
    for (let i = 0; i < m.length; i++) emit(m[i], c[i]!)
  }
  const over = (): boolean => {
    if (counters.queuedBytes < high && counters.heldDeliveries < highMessages) return false
    // the counts may include bytes the kernel took since: re-read before holding
    counters.resyncBacklog()
    return counters.queuedBytes >= high || counters.heldDeliveries >= highMessages
  }
  return {
    emit(message, cb) {
      // once holding, later messages queue behind the held ones, keeping their order
      if (messages.length === 0 && !over()) {
        emit(message, cb)
        return
      }
      messages.push(message)
      callbacks.push(cb)
      if (!timer) {
        timer = setInterval(release, HOLD_POLL_MS)
        timer.unref()
      }
    },
    get held() {
      return messages.length
    },
    releaseAll: () => release(true),
  }
}

type Readable = { read(size?: number): unknown; readableLength?: number; destroyed?: boolean }
/** per stream: its Client, and the two flags of boundedRead (no closure per connection, issue 15) */
const BOUND = Symbol('culex.boundReads')
interface Bound {
  client: Client
  /** the next read takes everything buffered */
  whole: boolean
  /** a look at a stalled read loop is scheduled */
  checking: boolean
  /** the stream's read, when it had one of its own (else its prototype's is called) */
  read?: Readable['read']
}
type BoundStream = Readable & { [BOUND]: Bound }

/**
 * Makes conn.read(null), Aedes' read of a client socket, return at most
 * READ_CHUNK bytes; the rest stays buffered for Aedes' next read, which it
 * makes once the batch parsed from this one is finished. A chunk that holds
 * no whole packet (a packet larger than READ_CHUNK) finishes no batch: then
 * the next turn reads everything buffered, as Aedes does by itself.
 */
export function boundReads(client: Client): void {
  const conn = client.conn as unknown as BoundStream
  conn[BOUND] = { client, whole: false, checking: false, read: Object.hasOwn(conn, 'read') ? conn.read : undefined }
  conn.read = boundedRead
}

function boundedRead(this: BoundStream, size?: number): unknown {
  const b = this[BOUND]
  const read = b.read ?? (Object.getPrototypeOf(this) as Readable).read
  if ((size === undefined || size === null) && !b.whole && (this.readableLength ?? 0) > READ_CHUNK) {
    if (!b.checking) {
      b.checking = true
      setImmediate(stalled, this)
    }
    return read.call(this, READ_CHUNK)
  }
  return read.call(this, size)
}

function stalled(conn: BoundStream): void {
  const b = conn[BOUND]
  b.checking = false
  if (readLoopBusy(b.client) || conn.destroyed || !conn.readableLength) return
  b.whole = true
  readNextBatch(b.client)
  b.whole = false
}
