/**
 * C17: one keepalive sweep per broker instead of a timer per connection (issue 15: Aedes'
 * keepalive held a Timeout, its `keepaliveTimeout` closure and context and three heap numbers,
 * ~270 B per idle connection).
 *
 * Aedes 2.0.0-beta.1 (lib/handlers/connect.js setKeepAlive) sets `client._keepaliveInterval` to
 * 1.5 x the keepalive in use, in ms, + 1 and `client._keepaliveTimer = setTimeout(keepaliveTimeout,
 * interval)`; lib/handlers/index.js calls `client._keepaliveTimer.refresh()` for every packet
 * while `_keepaliveInterval > 0`; lib/client.js close calls `clearTimeout(_keepaliveTimer)` and
 * sets it to null (clearTimeout ignores an object that is not a Timeout). Here, once the client is
 * registered (the public 'client' event), its Timeout is cleared and `_keepaliveTimer` becomes a
 * Stamp: `refresh()` notes that a packet came (a boolean: no clock read per packet, two per QoS 1
 * delivery, issue 15), and a sweep every SWEEP_MS over the broker's keepalive clients dates the
 * noted ones with its own time (a small integer, ms: at or after their last packet) and does what
 * `keepaliveTimeout` did (`broker.emit('keepaliveTimeout', client)`, then the client's 'error',
 * which closes it) for a client silent for longer than `_keepaliveInterval` since [MQTT-3.1.2-24]:
 * never earlier than Aedes' timer, at most 2 x SWEEP_MS later (the packet dated up to one sweep
 * late, found up to one sweep late). Until its registration a connecting client keeps Aedes' timer.
 * The sweep runs only while a broker has such clients. test/seam/contract-keepalive.test.ts
 * checks what it relies on; no upstream issue found (Aedes could keep one timer per broker).
 */
import { performance } from 'node:perf_hooks'
import type { Aedes, Client } from 'aedes'

/** how often the silent clients are looked for: a client is closed at most twice this much after 1.5 x its keepalive */
export const SWEEP_MS = 250
/** times are kept as ms modulo 2^30 (a V8 small integer, no heap number per client); a difference is right for 12 days */
const MASK = 0x3fffffff
const clock = (): number => performance.now() & MASK

/** a Stamp's time once a packet came since the last sweep (dated by the next one) */
const SEEN = -1
/** what `client._keepaliveTimer` becomes: a time at or after the client's last packet, or SEEN (one field: no more memory per connection than the time alone) */
class Stamp {
  constructor(public t: number) {}
  /** lib/handlers/index.js: a packet arrived */
  refresh(): void {
    this.t = SEEN
  }
}

interface ClientInternals {
  closed: boolean
  _keepaliveInterval: number
  _keepaliveTimer: { refresh(): unknown } | Stamp | null
  emit(event: string, ...args: unknown[]): boolean
}
const internals = (c: Client): ClientInternals => c as unknown as ClientInternals

/**
 * the broker's clients with a keepalive, swept every SWEEP_MS while there are any. An array (a Set's
 * table held ~60 B per entry): a closed client leaves it at the next sweep, so a Client is kept at
 * most SWEEP_MS after its close
 */
class Sweep {
  private clients: Client[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly broker: Aedes) {}

  /** `client` was registered: its Timeout gives way to a Stamp */
  adopt(client: Client): void {
    const c = internals(client)
    const timer = c._keepaliveTimer
    if (c.closed || !(c._keepaliveInterval > 0) || !timer || timer instanceof Stamp) return
    clearTimeout(timer as NodeJS.Timeout)
    c._keepaliveTimer = new Stamp(clock())
    this.clients.push(client)
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS)
      this.timer.unref()
    }
  }

  /** close the clients silent for longer than their interval; the closed ones leave the list */
  sweep(): void {
    const now = clock()
    const list = this.clients
    let silent: Client[] | undefined
    let kept = 0
    for (let i = 0; i < list.length; i++) {
      const client = list[i]!
      const c = internals(client)
      const stamp = c._keepaliveTimer
      if (c.closed || !(stamp instanceof Stamp)) continue
      if (stamp.t === SEEN) stamp.t = now
      if (((now - stamp.t) & MASK) > c._keepaliveInterval) (silent ??= []).push(client)
      else list[kept++] = client
    }
    list.length = kept
    if (kept === 0) this.stop()
    // what lib/handlers/connect.js keepaliveTimeout does (after the loop: these handlers close clients)
    if (silent)
      for (const client of silent) {
        this.broker.emit('keepaliveTimeout', client)
        internals(client).emit('error', new Error('keep alive timeout'))
      }
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}

/** every client of `broker` with a keepalive is checked by one sweep once registered, not by a timer of its own */
export function sweepKeepalives(broker: Aedes): void {
  const sweep = new Sweep(broker)
  broker.on('client', (client) => sweep.adopt(client))
  broker.once('closed', () => sweep.stop())
}
