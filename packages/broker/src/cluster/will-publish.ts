/**
 * A will of a client whose node is gone, published through the broker by the will sweep
 * (cluster/wills.ts): it reaches subscribers on every node and the offline queues of QoS 1/2
 * sessions.
 */
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import type { StoredWill } from './will-store.js'

/** authorize and publish `will` of `clientId` (left on `node`); `published` is the log message; counted in `stats.published` */
export function publishWill(broker: Aedes, log: Logger, stats: { published: number }, will: StoredWill, clientId: string, node: string, published: string): Promise<void> {
  // a fresh packet: the broker id/counter of the dead node must not be reused (see dedupe.ts)
  const packet: Record<string, unknown> = {
    cmd: 'publish',
    topic: will.topic,
    payload: will.payload ?? Buffer.alloc(0),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
    dup: false,
  }
  if (will.properties) {
    // the will's own properties (payload format, content type, ...) go on; its delay is no PUBLISH property
    const { willDelayInterval: _delay, ...properties } = will.properties
    if (Object.keys(properties).length > 0) packet.properties = properties
  }
  return new Promise((resolve) => {
    // like Aedes' own sweep: authorized without a live client
    broker.authorizePublish(null as never, packet as never, (err) => {
      if (err) {
        log.warn({ client: clientId, err: err.message }, 'will of a dead node refused by authorizePublish')
        return resolve()
      }
      broker.publish(packet as never, (perr) => {
        if (perr) log.warn({ client: clientId, err: perr.message }, 'will publish failed')
        else {
          stats.published++
          log.info({ client: clientId, node, topic: will.topic }, published)
        }
        resolve()
      })
    })
  })
}
