/**
 * Write coalescing for client sockets, the main lever on the message path.
 *
 * mqtt-packet writes each packet as several small chunks and Aedes delivers
 * every message in its own setImmediate, so without help a socket performs
 * one writev syscall per packet. Here the first write in an event-loop turn
 * corks the socket and one setImmediate uncorks it, so every packet written
 * to that socket during the turn leaves in a single syscall. Cost: one
 * closure per socket (made once) and one setImmediate per busy turn, not per
 * message. Back-pressure is unchanged: write() still returns false past the
 * high-water mark and Aedes waits for 'drain'.
 *
 * A write that throws (a chunk that is not a Buffer, e.g. from a packet
 * field out of range) destroys this socket instead of throwing up through
 * whatever was writing: nothing on the write path may take the process down.
 */
import type { Writable } from 'node:stream'

const destroyedError = Object.assign(new Error('write after the socket was destroyed'), { code: 'ERR_STREAM_DESTROYED' })

export function batchWrites(stream: Writable): void {
  const write = stream.write
  let corked = false
  const flush = (): void => {
    corked = false
    if (!stream.destroyed) stream.uncork()
  }
  stream.write = function batchedWrite(this: Writable, ...args: Parameters<Writable['write']>): boolean {
    // Aedes goes on writing to a client until its 'close' handler has run; Node builds an
    // ERR_STREAM_DESTROYED error for every chunk written after destroy() (mqtt-packet writes 3+ per
    // packet): 4% of a node's CPU under a flood. Same outcome (false, the callback gets an error), no error per chunk.
    if (stream.destroyed) {
      const cb = args.find((a) => typeof a === 'function') as ((err?: Error | null) => void) | undefined
      if (cb) process.nextTick(cb, destroyedError)
      return false
    }
    if (!corked) {
      corked = true
      stream.cork()
      setImmediate(flush)
    }
    try {
      return write.apply(this, args as never)
    } catch {
      // no error argument: an 'error' event here would need a listener to not be one more throw
      stream.destroy()
      return false
    }
  } as Writable['write']
}
