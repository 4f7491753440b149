/**
 * Node-wide back-pressure from subscribers to publishers.
 *
 * limits/guard.ts finishes every delivery at once (so one stuck subscriber
 * cannot stall the node) and counts what still waits for client sockets in
 * `counters.queuedDeliveries`. Without more, a publisher faster than its
 * subscribers (WebSocket subscribers, a fan-out, a loaded CPU) makes the node
 * buffer without bound until the guard cuts the subscribers off. So while
 * more than `high` deliveries wait, a publish is completed only once the
 * backlog is back under `low`: Aedes reads no further packets from that
 * publisher meanwhile (and sends no PUBREC for QoS 2; Aedes 1.2 writes a QoS 1
 * PUBACK before it publishes), and TCP slows it down, as stock Aedes does. A subscriber that does not read at all is cut off by
 * the guard within a second, so it cannot hold the others for longer.
 * Cost on the message path: one comparison per publish.
 */
import type { HotCounters } from '../ops/metrics.js'

export type Done = (err?: Error | null) => void

export interface PublishGate {
  /** call `done` now, or once the backlog has drained */
  pass(done: Done): void
  /** publishes waiting for the backlog to drain */
  readonly held: number
  /** let everything held go (shutdown) */
  releaseAll(): void
}

export function createPublishGate(counters: HotCounters, high = 4000, low = 1000): PublishGate {
  let held: Done[] = []
  let timer: NodeJS.Timeout | undefined
  const release = (force = false): void => {
    if (!force && counters.queuedDeliveries > low) return
    clearInterval(timer)
    timer = undefined
    const waiting = held
    held = []
    for (const done of waiting) done()
  }
  return {
    pass(done) {
      // once holding, later publishes queue behind the held ones, keeping their order
      if (held.length === 0 && counters.queuedDeliveries < high) return done()
      held.push(done)
      if (!timer) {
        timer = setInterval(release, 5)
        timer.unref()
      }
    },
    get held() {
      return held.length
    },
    releaseAll: () => release(true),
  }
}
