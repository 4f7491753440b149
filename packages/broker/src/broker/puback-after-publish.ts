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
 * Cost: one WeakMap lookup per packet written, none per delivery to a
 * connection without pending PUBACKs beyond that.
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
let installed = false

function install(): void {
  if (installed) return
  installed = true
  const mp = mqttPacket as unknown as { writeToStream: WriteToStream }
  const original = mp.writeToStream
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
  /** write the PUBACKs at the head of the queue whose publish has completed */
  flushers.write = (stream: Stream) => {
    const queue = queues.get(stream)
    if (!queue) return
    while (queue.length > 0 && queue[0]!.done) original(queue.shift()!.packet as never, stream)
  }
}

const flushers: { write: (stream: Stream) => void } = { write: () => {} }

/** hold PUBACKs on this broker's connections until their publish completes; call `completed` from the published hook */
export function pubackAfterPublish(broker: Aedes): { completed(client: unknown, packet: { qos?: number; messageId?: number }): void } {
  install()
  const handle = broker.handle
  broker.handle = (stream, req) => {
    queues.set(stream as Stream, [])
    return handle(stream, req)
  }
  return {
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
      flushers.write(conn)
    },
  }
}
