/**
 * Write coalescing for client sockets, the main lever on the message path.
 *
 * mqtt-packet writes each packet as several small chunks and Aedes delivers
 * every message in its own setImmediate, so without help a socket performs
 * one writev syscall per packet. Here the first write in an event-loop turn
 * corks the socket and one setImmediate uncorks it, so every packet written
 * to that socket during the turn leaves in a single syscall. Cost: one
 * flag per socket and one setImmediate per busy turn, not per message. Back-pressure is unchanged: write() still returns false past the
 * high-water mark and Aedes waits for 'drain'.
 *
 * `flushWrites` sends what a socket holds now instead of at the end of the turn: the CONNACK,
 * once Aedes has finished the connect (`clientReady`, broker/create.ts). The turn's wait is a
 * whole poll phase of other sockets' work added to every connect (issue 15: connects/s); the
 * CONNACK still leaves only after Aedes counts the client as connected (a server DISCONNECT,
 * e.g. 0x8B at shutdown, is only written to a connected client).
 *
 * A write that throws (a chunk that is not a Buffer, e.g. from a packet
 * field out of range) destroys this socket instead of throwing up through
 * whatever was writing: nothing on the write path may take the process down.
 */
import type { Writable } from 'node:stream'

const destroyedError = Object.assign(new Error('write after the socket was destroyed'), { code: 'ERR_STREAM_DESTROYED' })

const CORKED = Symbol('culex.corked')
/** the stream's own write, when it had one of its own before batchWrites (else its prototype's is called) */
const OWN_WRITE = Symbol('culex.ownWrite')
/** the turn's pending flush while the stream is corked, else null */
type Batched = Writable & { [CORKED]?: NodeJS.Immediate | null; [OWN_WRITE]?: Writable['write'] }

/** one shared write function and flag per stream, no closure per socket (issue 15, docs/performance.md) */
export function batchWrites(stream: Writable): void {
  const s = stream as Batched
  if (Object.hasOwn(s, 'write')) s[OWN_WRITE] = s.write
  s[CORKED] = null
  s.write = batchedWrite as Writable['write']
}

/** send what `stream` holds (written this turn) now; nothing for a stream batchWrites did not set up, or one with nothing held */
export function flushWrites(stream: Writable): void {
  const s = stream as Batched
  const pending = s[CORKED]
  if (!pending) return
  // the turn's flush would uncork the next batch early
  clearImmediate(pending)
  flush(s)
}

function flush(stream: Batched): void {
  stream[CORKED] = null
  if (!stream.destroyed) stream.uncork()
}

function batchedWrite(this: Batched, ...args: Parameters<Writable['write']>): boolean {
  // Aedes goes on writing to a client until its 'close' handler has run; Node builds an
  // ERR_STREAM_DESTROYED error for every chunk written after destroy() (mqtt-packet writes 3+ per
  // packet): 4% of a node's CPU under a flood. Same outcome (false, the callback gets an error), no error per chunk.
  if (this.destroyed) {
    const cb = args.find((a) => typeof a === 'function') as ((err?: Error | null) => void) | undefined
    if (cb) process.nextTick(cb, destroyedError)
    return false
  }
  if (!this[CORKED]) {
    this.cork()
    this[CORKED] = setImmediate(flush, this)
  }
  try {
    const write = this[OWN_WRITE] ?? (Object.getPrototypeOf(this) as Writable).write
    return write.apply(this, args as never)
  } catch {
    // no error argument: an 'error' event here would need a listener to not be one more throw
    this.destroy()
    return false
  }
}
