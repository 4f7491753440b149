/**
 * Inbound QoS 2 exactly once [MQTT-4.3.3-2] [MQTT-4.3.3-3]: a PUBLISH sent again with DUP 1 and the
 * same packet id before the broker's PUBREC for the first copy (both in one TCP write: one read of
 * the broker; or on a new connection of the same session right after the first one went away) is
 * delivered to subscribers once. One node in memory mode, one on a real redis-server, and two
 * nodes on one redis-server (the resend on the other node), MQTT 3.1.1 and 5; a QoS 0 subscriber
 * counts the deliveries up to a marker message published after the PUBCOMP (no sleep). In the
 * resend variant the first copy was, in every run seen, delivered and stored before the new
 * connection's CONNACK: it checks that the stored packet id is kept for the session's next
 * connection (on this node or the other), not the race of the one-read variant.
 */
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, startRedis } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { destroyAll, Raw } from '../conformance/raw.js'

type Target = 'memory' | 'redis' | 'two nodes'
const nodes: CulexNode[] = []
const ports: Record<Target, [number, number]> = { memory: [0, 0], redis: [0, 0], 'two nodes': [0, 0] }
beforeAll(async () => {
  const redis = await startRedis()
  const memory = await startTestNode({ node_id: 'dup-mem', allow_anonymous: true })
  const onRedis = await startTestNode({ node_id: 'dup-redis', redis_url: redis.url, allow_anonymous: true })
  const other = await startTestNode({ node_id: 'dup-redis-2', redis_url: redis.url, allow_anonymous: true })
  nodes.push(memory, onRedis, other)
  ports.memory = [memory.ports.mqtt, memory.ports.mqtt]
  ports.redis = [onRedis.ports.mqtt, onRedis.ports.mqtt]
  ports['two nodes'] = [onRedis.ports.mqtt, other.ports.mqtt]
})
afterAll(async () => {
  destroyAll()
  await Promise.all(nodes.map((n) => n.close()))
  await killAll()
})

const bytes = (p: Record<string, unknown>, version: 4 | 5): Buffer =>
  mqttPacket.generate(p as unknown as Packet, { protocolVersion: version })

/** a QoS 0 subscriber of `topic/#` on `port` (the message goes to topic/msg, the marker to topic/end) */
async function subscriber(port: number, version: 4 | 5, topic: string): Promise<Raw> {
  const sub = await Raw.open(port, version)
  await sub.connect({ clientId: `${topic}-sub` })
  await sub.subscribe(`${topic}/#`, 0)
  return sub
}

/** the PUBRECs (one per copy, [MQTT-4.3.3-2]), PUBREL, PUBCOMP, then the marker; the copies delivered before it */
async function completeAndCount(pub: Raw, sub: Raw, topic: string, messageId: number, copies: number): Promise<string[]> {
  for (let i = 0; i < copies; i++) expect((await pub.expect('pubrec', 5000)).messageId).toBe(messageId)
  pub.send({ cmd: 'pubrel', messageId })
  expect((await pub.expect('pubcomp', 5000)).messageId).toBe(messageId)
  pub.send({ cmd: 'publish', topic: `${topic}/end`, payload: 'end', qos: 0 })
  const before = await sub.until(`${topic}/end`, 5000)
  return before.filter((p) => p.cmd === 'publish').map((p) => String(p.payload))
}

for (const target of ['memory', 'redis', 'two nodes'] as const) {
  for (const version of [4, 5] as const) {
    const v = version === 5 ? '5' : '3.1.1'
    describe(`${target === 'two nodes' ? 'two Culex nodes on one redis-server' : `one Culex node, ${target} mode`}, MQTT ${v}`, () => {
      if (target !== 'two nodes') {
        it(`[MQTT-4.3.3-2] [MQTT-4.3.3-3] a QoS 2 PUBLISH and its DUP 1 copy (same id) in one write, before PUBREC: delivered once, a PUBREC for each`, async () => {
          const topic = `dup/${target}/${version}/one-read`
          const [port] = ports[target]
          const sub = await subscriber(port, version, topic)
          const pub = await Raw.open(port, version)
          await pub.connect({ clientId: `${topic}-pub` })
          const publish = { cmd: 'publish', topic: `${topic}/msg`, payload: 'once', qos: 2, messageId: 7 }
          pub.send(Buffer.concat([bytes({ ...publish, dup: false }, version), bytes({ ...publish, dup: true }, version)]))
          expect(await completeAndCount(pub, sub, topic, 7, 2)).toEqual(['once'])
        })
      }

      it(`[MQTT-4.3.3-2] [MQTT-4.3.3-3] a QoS 2 PUBLISH, the connection gone before its PUBREC, resent with DUP 1 on a new connection of the session${target === 'two nodes' ? ' to the other node' : ''} at once: delivered once`, async () => {
        const topic = `dup/${target}/${version}/resend`
        const [first, second] = ports[target]
        const sub = await subscriber(first, version, topic)
        const clientId = `${topic}-pub`
        const session = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false }
        const publish = { cmd: 'publish', topic: `${topic}/msg`, payload: 'once', qos: 2, messageId: 9 }
        // the second connection is open before the first one goes, so its CONNECT and resend follow at once
        const back = await Raw.open(second, version)
        const gone = await Raw.open(first, version)
        await gone.connect({ clientId, ...session })
        gone.send(bytes({ ...publish, dup: false }, version))
        gone.sock.end()
        gone.destroy()
        back.send(Buffer.concat([
          bytes({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, keepalive: 60, clientId, ...session }, version),
          bytes({ ...publish, dup: true }, version),
        ]))
        await back.expect('connack', 5000)
        expect(await completeAndCount(back, sub, topic, 9, 1)).toEqual(['once'])
      })
    })
  }
}
