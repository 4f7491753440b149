/**
 * A node being stopped finishes the publishes it started before its emitter closes.
 *
 * Aedes' QoS 1/2 publish first queues the message for every persistent session subscribed to it
 * (a Redis round trip, aedes.js enqueueOffline) and only then emits it (emitPacket: local
 * subscribers and, through the cluster bus, the other nodes). broker.close() closes the clients
 * and then the emitter at once, while publishes read just before may still be waiting for Redis:
 * their emit then finds the bus closed. Such a message stays in the queues of the persistent
 * subscribers that are online on other nodes, never delivered live, and goes out at their next
 * reconnect, although the publisher (no PUBACK) sent it again on another node and it was
 * delivered: a delivered message again on a later resume (chaos rolling restart, issue 8).
 * Here the emitter's close waits until the publishes started have completed (every client is
 * closed by then, so no new one starts), at most `timeoutMs`.
 */
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import { holdEmitterClose, observePublishes } from '../seam/index.js'

export function finishPublishesOnClose(broker: Aedes, log: Logger, timeoutMs = 5000): void {
  let inFlight = 0
  let idle: Array<() => void> = []
  const settled = (): void => {
    if (--inFlight > 0) return
    const waiting = idle
    idle = []
    for (const w of waiting) w()
  }
  // every publish (clients', wills, $SYS) counts until its series is done or failed
  observePublishes(broker, {
    started: () => void inFlight++,
    finished: settled,
  })
  // broker.close() closes the emitter after its clients: not before the publishes started are done
  holdEmitterClose(broker, (close) => {
    if (inFlight === 0) return close()
    const pending = inFlight
    const timer = setTimeout(() => {
      log.warn({ publishes: inFlight, timeout_ms: timeoutMs }, 'closing the emitter with publishes still unfinished')
      go()
    }, timeoutMs)
    let done = false
    const go = (): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      log.debug({ publishes: pending }, 'publishes finished before the emitter closes')
      close()
    }
    idle.push(go)
  })
}
