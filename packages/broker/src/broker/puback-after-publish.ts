/**
 * PUBACK only once a QoS 1 message is safe [MQTT-4.3.2-2].
 *
 * Aedes 1.2 writes the PUBACK of an incoming QoS 1 PUBLISH *before* it
 * publishes the message (lib/handlers/publish.js): in a cluster a node killed
 * between the two has acknowledged a message that never reached Redis (the
 * cluster bus, the offline queues of persistent sessions), and the publisher
 * will not send it again. Here the PUBACK bytes are held back until the
 * publish has completed (the `published` hook, the last step of Aedes'
 * publish: delivered locally, accepted by Redis, queued for offline
 * sessions), and PUBACKs still leave in the order their PUBLISHes arrived
 * [MQTT-4.6.0-2].
 *
 * How: Aedes writes every packet through mqtt-packet's `writeToStream`,
 * looked up at call time; the wrapper holds back PUBACKs written to the
 * connections of this broker (a WeakMap keyed by connection), and nothing else.
 * Cost: one string comparison per packet written, and a WeakMap lookup
 * per PUBACK.
 *
 * A held PUBACK is written from the `published` hook, outside Aedes' own
 * try/catch around writes (lib/write.js): a write that throws destroys that
 * connection here rather than unwinding into the emitter (issue 16).
 */
import mqttPacket from 'mqtt-packet'
import type { Aedes } from 'aedes'

type Stream = NodeJS.WritableStream
interface Pending {
  messageId: number
  packet: object
  done: boolean
}
type WriteToStream = (packet: { cmd: string; messageId?: number }, stream: Stream, opts?: unknown) => boolean

const queues = new WeakMap<Stream, Pending[]>()
const mp = mqttPacket as unknown as { writeToStream: WriteToStream }
/** mqtt-packet's own writeToStream, kept once the wrapper is in place */
let write: WriteToStream | undefined

function install(): void {
  if (write) return
  const original = mp.writeToStream
  write = original
  const wrapped = ((packet, stream, opts) => {
    if (packet.cmd === 'puback') {
      const queue = queues.get(stream)
      if (queue) {
        queue.push({ messageId: packet.messageId!, packet, done: false })
        return true
      }
    }
    return original(packet, stream, opts)
  }) as WriteToStream & { cacheNumbers?: boolean }
  // keep the function's own settings (mqtt.js sets writeToStream.cacheNumbers)
  Object.defineProperty(wrapped, 'cacheNumbers', {
    get: () => (original as unknown as { cacheNumbers: boolean }).cacheNumbers,
    set: (v: boolean) => ((original as unknown as { cacheNumbers: boolean }).cacheNumbers = v),
  })
  mp.writeToStream = wrapped
}

export interface PubackHold {
  /** from then on, PUBACKs on this broker's connections wait for `completed` */
  attach(broker: Aedes): void
  /** the publish of `packet` by `client` has completed: its PUBACK may go (call it from the published hook) */
  completed(client: unknown, packet: { qos?: number; messageId?: number }): void
}

export function pubackAfterPublish(): PubackHold {
  install()
  return {
    attach(broker) {
      const handle = broker.handle
      broker.handle = (stream, req) => {
        queues.set(stream as Stream, [])
        return handle(stream, req)
      }
    },
    completed(client, packet) {
      if (packet.qos !== 1 || packet.messageId === undefined) return
      const conn = (client as { conn?: Stream }).conn
      const queue = conn && queues.get(conn)
      if (!queue) return
      for (const p of queue) {
        if (p.messageId === packet.messageId && !p.done) {
          p.done = true
          break
        }
      }
      // write the PUBACKs at the head of the queue whose publish has completed, in PUBLISH order
      while (queue.length > 0 && queue[0]!.done) {
        try {
          write!(queue.shift()!.packet as never, conn)
        } catch {
          queue.length = 0
          ;(conn as unknown as { destroy(): void }).destroy()
          return
        }
      }
    },
  }
}
