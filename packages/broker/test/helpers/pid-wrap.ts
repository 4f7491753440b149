/**
 * A persistent-session subscriber whose outgoing packet id counter goes once round (65,535 ids)
 * while one message stays in flight, over raw MQTT (helpers/raw-mqtt.ts), against a broker on a
 * loopback port. One publisher feeds several subscribers at once (each client has its own
 * counter, and each goes round by the same count), acknowledging every filler at once; the held
 * message is a QoS 1 PUBLISH without PUBACK, or a QoS 2 one past PUBREC/PUBREL without PUBCOMP:
 * nothing but a filler is acknowledged unless the test sends it.
 */
import mqttPacket from 'mqtt-packet'
import { rawClient, rawSubscribe, type AnyPacket, type Raw } from './raw-mqtt.js'

/** how many packet ids a client has: after this many more, its counter is back where it was */
export const PACKET_IDS = 65535

export interface WrapSubscriber {
  raw: Raw
  clientId: string
  version: 4 | 5
  /** the QoS of the held message (and of the one after the round) */
  qos: 1 | 2
  /** fillers received (each acknowledged on arrival) */
  fills: number
  /** PUBLISHes received on the held topic, in order */
  held: AnyPacket[]
  /** PUBRELs received (never answered: the test sends each PUBCOMP) */
  pubrels: number[]
}

export const heldTopic = (s: { clientId: string }): string => `wrap/held/${s.clientId}`
export const FILL_TOPIC = 'wrap/fill'

/** connect (a persistent session), subscribe the held topic at its QoS and the filler topic at QoS 1 */
export async function wrapSubscriber(port: number, clientId: string, version: 4 | 5, qos: 1 | 2, fresh = true): Promise<WrapSubscriber> {
  const sub: WrapSubscriber = { raw: undefined as unknown as Raw, clientId, version, qos, fills: 0, held: [], pubrels: [] }
  const onPacket = (p: AnyPacket): void => {
    const raw = sub.raw
    if (p.cmd === 'publish' && p.topic === FILL_TOPIC) {
      sub.fills++
      raw.send({ cmd: 'puback', messageId: p.messageId })
    } else if (p.cmd === 'publish') {
      sub.held.push(p)
    } else if (p.cmd === 'pubrel') {
      sub.pubrels.push(p.messageId!)
    }
  }
  // 3.1.1: CleanSession 0 [MQTT-3.1.2-4]; 5: Clean Start as asked, the session kept an hour
  const session = version === 5 ? { clean: fresh, properties: { sessionExpiryInterval: 3600 } } : { clean: false }
  const { raw } = await rawClient(port, { clientId, protocolVersion: version, onPacket, ...session })
  sub.raw = raw
  if (fresh) {
    await rawSubscribe(raw, heldTopic(sub), qos, 1)
    await rawSubscribe(raw, FILL_TOPIC, 1, 2)
  }
  return sub
}

/** a clean 3.1.1 publisher of QoS 1 messages; `publish` resolves when the broker acknowledged all */
export async function wrapPublisher(port: number, clientId: string): Promise<{ raw: Raw; publish(topic: string, payloads: string[], qos?: 1 | 2): Promise<void>; acked: number }> {
  let acked = 0
  let wake: (() => void) | undefined
  const onPacket = (p: AnyPacket): void => {
    if (p.cmd === 'puback') acked++
    else if (p.cmd === 'pubrec') pub.raw.send({ cmd: 'pubrel', messageId: p.messageId })
    else if (p.cmd === 'pubcomp') acked++
    else return
    wake?.()
  }
  const { raw } = await rawClient(port, { clientId, onPacket })
  let nextId = 0
  const pub = {
    raw,
    get acked() {
      return acked
    },
    async publish(topic: string, payloads: string[], qos: 1 | 2 = 1): Promise<void> {
      const target = acked + payloads.length
      raw.socket.write(
        Buffer.concat(
          payloads.map((payload) => {
            nextId = (nextId % PACKET_IDS) + 1
            return mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: nextId, retain: false, dup: false })
          }),
        ),
      )
      while (acked < target) {
        if (raw.closed) throw new Error('publisher closed')
        await new Promise<void>((r) => (wake = r))
      }
    },
  }
  return pub
}

/**
 * publish `count` fillers, `batch` at a time once every subscriber has the ones before (so no
 * queue grows: what the test measures is the id counter, not a backlog)
 */
export async function fill(pub: Awaited<ReturnType<typeof wrapPublisher>>, subs: WrapSubscriber[], count: number, batch = 500): Promise<void> {
  const base = subs.map((s) => s.fills)
  for (let sent = 0; sent < count; ) {
    const n = Math.min(batch, count - sent)
    await pub.publish(FILL_TOPIC, Array.from({ length: n }, (_, i) => String(sent + i)))
    sent += n
    await Promise.all(subs.map((s, i) => s.raw.until(() => s.fills - base[i]! >= sent, 20_000, `${s.clientId}: ${sent} fillers`)))
  }
}
