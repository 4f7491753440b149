/**
 * The receiving side of the cluster bus's flow control (bus.ts): what a node
 * takes in from its peers, and how far behind it is.
 *
 * - Input lag: what the peers published that this node has not processed
 *   yet waits in Redis and in the kernel, out of its sight. A probe measures
 *   it: published on a channel of this node's own, which its subscriber
 *   connection reads in one stream with the bus channel, it comes back after
 *   every batch Redis took before it. One probe is out at a time, and only
 *   while peers send.
 * - Input gate: deliveries of remote messages are counted (Aedes writes them
 *   a turn later, so until then by estimate) on top of the node's backlog;
 *   once over highWater, reading from Redis stops until the backlog is down
 *   to lowWater. What the peers published meanwhile waits in Redis and the
 *   kernel (bounded: they hold their publishers at the pressure signal), not
 *   in this node's memory.
 */
import type { Redis } from 'ioredis'
import { socketOf } from '../seam/index.js'

/** a probe goes out this long after the previous came back */
const PROBE_EVERY_MS = 10
/** no batch from a peer for this long: stop probing */
const PROBE_IDLE_MS = 1000

export interface LagProbe {
  readonly channel: string
  /** a batch from a peer arrived */
  onBatch(): void
  /** a message on the subscriber link; true when it was the probe */
  onMessage(channel: string): boolean
  /** the lag now: the last probe's, or the age of the one still out */
  lag(): number
  /** the link dropped: the probe out is not coming back */
  reset(): void
  /** the input stopped: the lag is unknown (infinite) until a probe comes back */
  stale(): void
  close(): void
}

export function createLagProbe(pub: Redis, busChannel: string, origin: string, onError: (err: Error) => void): LagProbe {
  const channel = `${busChannel}:probe:${origin}`
  let sentAt = 0
  let last = 0
  let lastBatch = 0
  let timer: NodeJS.Timeout | undefined
  const send = (): void => {
    timer = undefined
    if (sentAt || Date.now() - lastBatch > PROBE_IDLE_MS) return
    sentAt = Date.now()
    pub.publish(channel, '').catch((err: Error) => {
      sentAt = 0
      onError(err)
    })
  }
  return {
    channel,
    onBatch() {
      lastBatch = Date.now()
      if (!sentAt) timer ??= setTimeout(send, 0)
    },
    onMessage(ch) {
      if (ch !== channel) return false
      last = Date.now() - sentAt
      sentAt = 0
      timer ??= setTimeout(send, PROBE_EVERY_MS)
      return true
    },
    lag: () => (sentAt ? Math.max(last, Date.now() - sentAt) : last),
    reset() {
      sentAt = 0
    },
    stale() {
      last = Infinity
    },
    close() {
      clearTimeout(timer)
    },
  }
}

export interface InputGate {
  /** the node holds highWater bytes or more for its subscribers, this turn's remote deliveries included */
  full(): boolean
  /** remote deliveries made this turn, estimated bytes */
  count(bytes: number): void
  /** stop reading the subscriber link until the backlog is down to lowWater */
  pause(): void
  readonly paused: boolean
  /** the link was re-made: its new socket reads */
  reset(): void
  close(): void
}

export function createInputGate(sub: Redis, backlog: () => number, highWater: number, lowWater: number): InputGate {
  // the backlog is read once per event-loop turn
  let base = -1
  let turn = 0
  let paused = false
  let poll: NodeJS.Timeout | undefined
  // the socket ioredis reads the subscriber link from
  const socket = (): { pause(): void; resume(): void } | undefined => socketOf(sub)
  const resume = (): void => {
    clearInterval(poll)
    if (!paused) return
    paused = false
    socket()?.resume()
  }
  return {
    full() {
      if (base < 0) {
        base = backlog()
        setImmediate(() => {
          base = -1
          turn = 0
        })
      }
      return base + turn >= highWater
    },
    count(bytes) {
      turn += bytes
    },
    pause() {
      if (paused) return
      paused = true
      socket()?.pause()
      poll = setInterval(() => backlog() <= lowWater && resume(), 5)
    },
    get paused() {
      return paused
    },
    reset() {
      clearInterval(poll)
      paused = false
    },
    close: resume,
  }
}
