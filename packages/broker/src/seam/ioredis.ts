/**
 * The seam to ioredis 5 (docs/internals.md, rows R1, R2): the socket a connection reads from and
 * writes to, `redis.stream`, undocumented, and its 'connect' event, after which ioredis writes
 * commands into it. test/seam/contract-stores.test.ts checks both.
 */
import type { Redis } from 'ioredis'

type Stream = NodeJS.WritableStream & { cork(): void; uncork(): void; pause(): void; resume(): void }
const streamOf = (redis: Redis): Stream | undefined => (redis as unknown as { stream?: Stream }).stream

/** the socket of `redis`' current connection, to pause and resume its reads (undefined before connecting) */
export function socketOf(redis: Redis): { pause(): void; resume(): void } | undefined {
  return streamOf(redis)
}

const COALESCED = Symbol('culex.coalescedWrites')
interface CoalesceState {
  write: Stream['write']
  /** the socket is corked; the bytes leave at the uncork */
  corked: boolean
  /** an uncork at the end of this tick is due (a command that must not wait longer) */
  tick: boolean
  /** the command being written may wait for the end of the loop turn (`deferredWrite`) */
  defer: boolean
}
type Coalesced = Stream & { [COALESCED]?: CoalesceState }

function uncorkLater(s: Coalesced): void {
  const c = s[COALESCED]!
  // an immediate of a deferred write may come after the tick's uncork: nothing left to do
  if (!c.corked) return
  c.corked = false
  c.tick = false
  s.uncork()
}

function coalescedWrite(this: Coalesced, ...args: unknown[]): boolean {
  const c = this[COALESCED]!
  if (c.defer) {
    if (!c.corked) {
      c.corked = true
      this.cork()
      setImmediate(uncorkLater, this)
    }
  } else if (!c.tick) {
    if (!c.corked) {
      c.corked = true
      this.cork()
    }
    c.tick = true
    process.nextTick(uncorkLater, this)
  }
  return (c.write as (...a: unknown[]) => boolean).apply(this, args)
}

/**
 * `send` (one or more commands on `redis`) written with the next command that cannot wait, or at
 * the end of the loop turn (a `setImmediate`) at the latest, instead of at the end of this tick.
 * For commands issued one per message (Aedes handles each in its own immediate) that must stay in
 * order with what follows them on the link: a persistent session's queue steps, a retained write,
 * an inbound QoS 2 step, a shared subscription's in-flight record (before the bus batch that
 * carries its message); one write for a turn's, where each went in a write of its own. Without
 * `coalesceWrites` on `redis`: written at once.
 */
export function deferredWrite<T>(redis: Redis, send: () => T): T {
  const c = (streamOf(redis) as Coalesced | undefined)?.[COALESCED]
  if (!c) return send()
  c.defer = true
  try {
    return send()
  } finally {
    c.defer = false
  }
}

/**
 * The commands `redis` is given in one tick leave in one write (R2). ioredis writes each command to
 * its socket at once, one `write` syscall and one wake-up of Redis each; a clean CONNECT and its
 * close in cluster mode ask Redis ~15 things, several in the same tick, and many clients connecting
 * at once ask in the same ticks. The socket is corked at a tick's first command and uncorked at the
 * end of the tick (process.nextTick, before any I/O): the bytes and their order are the same, only
 * the syscalls are fewer. Not ioredis' enableAutoPipelining, which holds commands while an earlier
 * batch waits for its replies, and sends MULTI/EXEC and pipelines past commands queued before them.
 * Each new connection's socket is wrapped at its 'connect' (ioredis makes one per reconnect).
 */
export function coalesceWrites(redis: Redis): void {
  const wrap = (): void => {
    const s = streamOf(redis) as Coalesced | undefined
    if (!s || s[COALESCED]) return
    s[COALESCED] = { write: s.write, corked: false, tick: false, defer: false }
    s.write = coalescedWrite as Stream['write']
  }
  redis.on('connect', wrap)
  wrap()
}
