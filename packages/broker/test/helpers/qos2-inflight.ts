/**
 * A persistent-session subscriber with several outgoing QoS 2 messages in flight at once, over raw
 * MQTT (3.1.1 or 5), against any broker on a loopback port (a Culex node or Mosquitto): the first
 * connection receives three PUBLISHes (live, or queued while the session was offline and replayed
 * at its CONNECT), answers PUBREC to the first two (in one TCP write, so one
 * read of the broker, or one at a time) and goes away without PUBCOMP; the second connection must
 * get PUBREL for both and the third message again as PUBLISH DUP=1 with its id [MQTT-4.4.0-1]
 * [MQTT-3.3.1-1], and nothing else; after it completes every flow, a third connection gets nothing.
 */
import mqttPacket, { type Packet } from 'mqtt-packet'
import { Raw, type Any } from '../conformance/raw.js'
import { waitFor } from './wait.js'

export interface Seen {
  cmd: string
  messageId?: number
  payload?: string
  dup?: boolean
}
export interface Qos2Outcome {
  /** packet ids of the three PUBLISHes of the first connection, in order ("0", "1", "2") */
  ids: number[]
  /** the PUBRELs the first connection got for its two PUBRECs */
  firstPubrels: number[]
  /** what the second connection got before it answered anything */
  resent: Seen[]
  /** what a third connection got: nothing is left in flight */
  leftOver: Seen[]
}

const seen = (p: Any): Seen => ({
  cmd: p.cmd,
  messageId: p.messageId as number | undefined,
  ...(p.cmd === 'publish' ? { payload: String(p.payload), dup: Boolean(p.dup) } : {}),
})

export interface RoundOptions {
  /** the two PUBRECs in one TCP write (one read of the broker), else each after the PUBREL of the one before */
  pubrecsTogether: boolean
  /** the three messages published while the session is offline, replayed at the first connection */
  queued?: boolean
}

export async function qos2InFlightRound(port: number, version: 4 | 5, id: string, opts: RoundOptions): Promise<Qos2Outcome> {
  const topic = `q2/${id}`
  const connect = version === 5 ? { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } } : { clientId: id, clean: false }
  const packetsOf = (c: Raw, cmd: string): Any[] => c.packets.filter((p) => p.cmd === cmd)
  const barrier = async (c: Raw): Promise<void> => {
    const n = packetsOf(c, 'pingresp').length
    c.send({ cmd: 'pingreq' })
    await waitFor(() => packetsOf(c, 'pingresp').length > n, 5000, 'PINGRESP')
  }

  const pub = await Raw.open(port, version)
  await pub.connect({ clientId: `${id}-pub` })
  const publish = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) await pub.publish(`${topic}/m`, String(i), 2, false, i + 1)
  }
  let c1 = await Raw.open(port, version)
  await c1.connect(connect)
  await c1.subscribe(`${topic}/#`, 2)
  if (opts.queued) {
    await c1.disconnect()
    await publish()
    c1 = await Raw.open(port, version)
    await c1.connect(connect)
  } else await publish()
  await waitFor(() => packetsOf(c1, 'publish').length === 3, 5000, 'three PUBLISHes')
  const ids = packetsOf(c1, 'publish').map((p) => p.messageId as number)
  const pubrec = (messageId: number): Buffer => mqttPacket.generate({ cmd: 'pubrec', messageId } as Packet, { protocolVersion: version })
  if (opts.pubrecsTogether) {
    c1.send(Buffer.concat([pubrec(ids[0]!), pubrec(ids[1]!)]))
    await waitFor(() => packetsOf(c1, 'pubrel').length >= 2, 5000, 'two PUBRELs')
  } else {
    for (const [n, messageId] of ids.slice(0, 2).entries()) {
      c1.send(pubrec(messageId))
      await waitFor(() => packetsOf(c1, 'pubrel').length > n, 5000, `PUBREL ${n + 1}`)
    }
  }
  await barrier(c1)
  const firstPubrels = packetsOf(c1, 'pubrel').map((p) => p.messageId as number)
  c1.destroy()
  await c1.closedBy()

  // the second connection: what is resent, up to three packets, then a PINGRESP after them
  const c2 = await Raw.open(port, version)
  const ack = await c2.connect(connect)
  if (!ack.sessionPresent) throw new Error('the session was not kept')
  const resentPackets = (): Any[] => c2.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel')
  await waitFor(() => resentPackets().length >= 3, 5000, 'three packets resent').catch(() => {})
  await barrier(c2)
  const resent = resentPackets().map(seen)
  // complete every flow the broker started: PUBCOMP a PUBREL, PUBREC a PUBLISH and PUBCOMP its PUBREL
  for (const p of resentPackets()) {
    if (p.cmd === 'pubrel') c2.send({ cmd: 'pubcomp', messageId: p.messageId })
    else {
      c2.send({ cmd: 'pubrec', messageId: p.messageId })
      await waitFor(() => c2.packets.some((q) => q.cmd === 'pubrel' && q.messageId === p.messageId && c2.packets.indexOf(q) > c2.packets.indexOf(p)), 5000, `PUBREL ${p.messageId}`)
      c2.send({ cmd: 'pubcomp', messageId: p.messageId })
    }
  }
  await barrier(c2)
  await c2.disconnect()

  // the third: nothing left; a marker published after the CONNACK closes the look
  const c3 = await Raw.open(port, version)
  await c3.connect(connect)
  await pub.publish(`${topic}/end`, 'end', 0)
  const leftOver = (await c3.until(`${topic}/end`, 5000)).filter((p) => p.cmd !== 'pingresp').map(seen)
  await c3.disconnect(version === 5 ? { reasonCode: 0, properties: { sessionExpiryInterval: 0 } } : {})
  await pub.disconnect()
  return { ids, firstPubrels, resent, leftOver }
}

/** what a broker that keeps [MQTT-4.4.0-1] resends for the round above */
export function expectedResend(ids: number[]): Seen[] {
  return [
    { cmd: 'pubrel', messageId: ids[0] },
    { cmd: 'pubrel', messageId: ids[1] },
    { cmd: 'publish', messageId: ids[2], payload: '2', dup: true },
  ]
}
