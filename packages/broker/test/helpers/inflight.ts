/**
 * In-flight redelivery on reconnect, one scenario for the in-memory node and the Redis cluster
 * (test/node/inflight.test.ts, test/cluster/inflight.test.ts), seen through raw clients so the
 * DUP bit and packet identifiers are visible and nothing is acknowledged behind the test's back.
 */
import { expect } from 'vitest'
import { rawClient, rawSubscribe, type AnyPacket } from './raw-mqtt.js'

export interface Ports {
  /** MQTT port the subscriber connects to (first time and every reconnect) */
  sub: number
  /** MQTT port the publisher uses */
  pub: number
}

async function publishRaw(port: number, id: string, packets: Array<{ topic: string; payload: string; qos: 1 | 2 }>): Promise<void> {
  const { raw } = await rawClient(port, { clientId: id })
  let mid = 1
  for (const p of packets) {
    const messageId = mid++
    raw.send({ cmd: 'publish', topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos, retain: false, dup: false, messageId })
    if (p.qos === 1) {
      await raw.until((ps) => ps.some((x) => x.cmd === 'puback' && x.messageId === messageId), 5000, 'PUBACK')
    } else {
      await raw.until((ps) => ps.some((x) => x.cmd === 'pubrec' && x.messageId === messageId), 5000, 'PUBREC')
      raw.send({ cmd: 'pubrel', messageId })
      await raw.until((ps) => ps.some((x) => x.cmd === 'pubcomp' && x.messageId === messageId), 5000, 'PUBCOMP')
    }
  }
  await raw.drop()
}

const byPayload = (ps: AnyPacket[]): Record<string, AnyPacket> => Object.fromEntries(ps.map((p) => [String(p.payload), p]))

/**
 * A clean:false subscriber gets a QoS 1 and a QoS 2 message, acknowledges neither and drops the
 * connection; on reconnect both come again with DUP=1 and the same packet identifiers
 * [MQTT-4.4.0-1] [MQTT-3.3.1-1]. Once both are acknowledged, the next reconnect gets neither.
 */
export async function unackedPublishesComeBack(ports: Ports, tag: string): Promise<void> {
  const clientId = `inflight-${tag}`
  const topic = `inflight/${tag}`
  const first = await rawClient(ports.sub, { clientId, clean: false })
  await rawSubscribe(first.raw, `${topic}/#`, 2)
  await publishRaw(ports.pub, `inflight-pub-${tag}`, [
    { topic: `${topic}/one`, payload: 'q1', qos: 1 },
    { topic: `${topic}/two`, payload: 'q2', qos: 2 },
  ])
  await first.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2, 5000, 'two messages')
  const sent = byPayload(first.raw.publishes())
  expect(sent.q1).toMatchObject({ qos: 1, dup: false })
  expect(sent.q2).toMatchObject({ qos: 2, dup: false })
  await first.raw.drop()

  const again = await rawClient(ports.sub, { clientId, clean: false })
  expect(again.connack.sessionPresent).toBe(true)
  await again.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length >= 2, 5000, 'both unacknowledged messages again')
  const resent = byPayload(again.raw.publishes())
  expect(again.raw.publishes()).toHaveLength(2)
  // [MQTT-4.4.0-1] resent with their original packet identifiers; [MQTT-3.3.1-1] DUP set on a re-delivery
  expect(resent.q1).toMatchObject({ topic: `${topic}/one`, qos: 1, dup: true, messageId: sent.q1!.messageId })
  expect(resent.q2).toMatchObject({ topic: `${topic}/two`, qos: 2, dup: true, messageId: sent.q2!.messageId })

  // acknowledge both; then a marker published after the next reconnect is the only message
  again.raw.send({ cmd: 'puback', messageId: resent.q1!.messageId })
  again.raw.send({ cmd: 'pubrec', messageId: resent.q2!.messageId })
  await again.raw.until((ps) => ps.some((p) => p.cmd === 'pubrel' && p.messageId === resent.q2!.messageId), 5000, 'PUBREL')
  again.raw.send({ cmd: 'pubcomp', messageId: resent.q2!.messageId })
  // a round trip after the acks, so they have been handled before the drop
  again.raw.send({ cmd: 'pingreq' })
  await again.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
  await again.raw.drop()

  const third = await rawClient(ports.sub, { clientId, clean: false })
  await publishRaw(ports.pub, `inflight-pub-${tag}`, [{ topic: `${topic}/marker`, payload: 'marker', qos: 1 }])
  await third.raw.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === 'marker'), 5000, 'marker')
  expect(third.raw.publishes().map((p) => String(p.payload))).toEqual(['marker'])
  await third.raw.drop()
}

/**
 * A QoS 2 message whose PUBREC the broker got, but whose PUBCOMP never came: on reconnect the
 * broker sends the PUBREL again, with the same packet identifier, and not the PUBLISH
 * [MQTT-4.4.0-1] [MQTT-4.3.3-1].
 */
export async function unackedPubrelComesBack(ports: Ports, tag: string): Promise<void> {
  const clientId = `inflight-rel-${tag}`
  const topic = `inflight-rel/${tag}`
  const first = await rawClient(ports.sub, { clientId, clean: false })
  await rawSubscribe(first.raw, topic, 2)
  await publishRaw(ports.pub, `inflight-rel-pub-${tag}`, [{ topic, payload: 'q2', qos: 2 }])
  await first.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'QoS 2 message')
  const msg = first.raw.publishes()[0]!
  first.raw.send({ cmd: 'pubrec', messageId: msg.messageId })
  await first.raw.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 5000, 'PUBREL')
  await first.raw.drop()

  const again = await rawClient(ports.sub, { clientId, clean: false })
  await again.raw.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 5000, 'PUBREL again')
  expect(again.raw.packets.find((p) => p.cmd === 'pubrel')).toMatchObject({ messageId: msg.messageId })
  expect(again.raw.publishes()).toEqual([])
  again.raw.send({ cmd: 'pubcomp', messageId: msg.messageId })
  again.raw.send({ cmd: 'pingreq' })
  await again.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
  await again.raw.drop()

  // completed: nothing comes back any more
  const third = await rawClient(ports.sub, { clientId, clean: false })
  third.raw.send({ cmd: 'pingreq' })
  await third.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
  await publishRaw(ports.pub, `inflight-rel-pub-${tag}`, [{ topic, payload: 'marker', qos: 1 }])
  await third.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'marker')
  expect(third.raw.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel').map((p) => p.cmd + ':' + String(p.payload ?? ''))).toEqual(['publish:marker'])
  await third.raw.drop()
}

/**
 * One message in flight to two sessions: each gets it again with the packet id it was sent
 * with to that session [MQTT-4.4.0-1], whatever was sent to the other in between.
 */
export async function eachSessionKeepsItsPacketId(ports: Ports, tag: string): Promise<void> {
  const topic = `inflight-pid/${tag}`
  const x = await rawClient(ports.sub, { clientId: `pid-x-${tag}`, clean: false })
  await rawSubscribe(x.raw, topic, 1)
  const y = await rawClient(ports.pub, { clientId: `pid-y-${tag}`, clean: false })
  await rawSubscribe(y.raw, topic, 1)
  await y.raw.drop()
  await publishRaw(ports.pub, `pid-pub-${tag}`, [{ topic, payload: 'shared', qos: 1 }])
  await x.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'message to x')
  const toX = x.raw.publishes()[0]!
  await x.raw.drop()
  // y gets it from its queue, with an id of its own, and does not acknowledge it either
  const y2 = await rawClient(ports.pub, { clientId: `pid-y-${tag}`, clean: false })
  await y2.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'message to y')
  const toY = y2.raw.publishes()[0]!
  expect(toY).toMatchObject({ dup: false, payload: Buffer.from('shared') })
  await y2.raw.drop()

  const x2 = await rawClient(ports.sub, { clientId: `pid-x-${tag}`, clean: false })
  await x2.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'message to x again')
  expect(x2.raw.publishes()[0]).toMatchObject({ dup: true, messageId: toX.messageId, payload: Buffer.from('shared') })
  const y3 = await rawClient(ports.pub, { clientId: `pid-y-${tag}`, clean: false })
  await y3.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'message to y again')
  expect(y3.raw.publishes()[0]).toMatchObject({ dup: true, messageId: toY.messageId, payload: Buffer.from('shared') })
  await x2.raw.drop()
  await y3.raw.drop()
}
