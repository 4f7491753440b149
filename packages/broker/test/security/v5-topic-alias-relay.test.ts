/**
 * Found by the MQTT 5 fuzzer (security/fuzz.test.ts, seed 5): a message published with a Topic
 * Alias came back from Culex's MessagePack codec (cluster/msgpack.ts) with `topicAlias: null`.
 * Aedes resolves the alias and sets the property to undefined before forwarding, MessagePack
 * writes undefined as nil and nil decodes as null, which mqtt-packet refuses to write ("Invalid
 * topicAlias: null": it destroys the subscriber's stream; with a Maximum Packet Size, the size
 * check threw first). A `$share/` member that leaves messages unacknowledged has them taken out
 * of the store and sent to another member [MQTT-4.8.2-6]: that member lost them and its
 * connection. The Topic Alias is the publisher's, per connection [MQTT-3.3.2-10]; the next member
 * gets the message with its topic, and stays connected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startRedis, type TestRedis } from '../helpers/cluster-procs.js'
import mqttPacket from 'mqtt-packet'
import { collect, closeClients, connect, startTestNode, waitFor } from '../helpers/node.js'
import { nextPacket, openRaw, type RawConn } from '../helpers/fuzz/conn.js'

async function exceptions(n: CulexNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${n.ports.http}/metrics`)).text()
  return Number(/^culex_client_errors_total\{reason="exception"\} (\S+)$/m.exec(text)?.[1] ?? NaN)
}

let redis: TestRedis
const nodes: CulexNode[] = []
beforeAll(async () => {
  redis = await startRedis()
  nodes.push(await startTestNode({ allow_anonymous: true }))
  nodes.push(await startTestNode({ allow_anonymous: true, redis_url: redis.url, node_id: 'tar-redis' }))
})
afterAll(async () => {
  await closeClients()
  for (const n of nodes) await n.close()
  await redis.stop()
})
const url = (n: CulexNode): string => `mqtt://127.0.0.1:${n.ports.mqtt}`

/** a v5 member of `filter` that takes its messages and never acknowledges them */
async function silentMember(n: CulexNode, clientId: string, filter: string): Promise<RawConn> {
  const c = await openRaw('tcp', n.ports.mqtt, 5000, 5)
  c.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId } as mqttPacket.Packet, { protocolVersion: 5 }))
  expect((await nextPacket(c, 'connack'))?.reasonCode).toBe(0)
  c.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] } as mqttPacket.Packet, { protocolVersion: 5 }))
  expect(await nextPacket(c, 'suback')).toBeDefined()
  return c
}

describe('a message published with a Topic Alias, passed on to another $share/ member [MQTT-3.3.2-10] [MQTT-4.8.2-6]', () => {
  it.each([
    ['memory', 0],
    ['Redis', 1],
  ] as const)('%s node: the member that left it unacknowledged goes, the next member gets it with its topic and stays connected', async (_mode, i) => {
    const n = nodes[i]!
    for (const maximumPacketSize of [undefined, 1024]) {
      const tag = `${i}${maximumPacketSize ?? ''}`
      const filter = `$share/g${tag}/tar/${tag}/#`
      const silent = await silentMember(n, `tar-silent-${tag}`, filter)
      const taken = nextPacket(silent, 'publish')
      const pub = await connect(url(n), { clientId: `tar-pub-${tag}`, protocolVersion: 5 })
      // the alias set with the topic, then used alone (mqtt.js sends an empty topic): both go to the only member
      await pub.publishAsync(`tar/${tag}/x`, 'one', { qos: 1, properties: { topicAlias: 1 } })
      await pub.publishAsync('', 'two', { qos: 1, properties: { topicAlias: 1 } })
      expect((await taken)?.payload.toString()).toBe('one')
      const sub = await connect(url(n), { clientId: `tar-sub-${tag}`, protocolVersion: 5, properties: maximumPacketSize ? { maximumPacketSize } : {} })
      await sub.subscribeAsync(filter, { qos: 1 })
      const got = collect(sub)
      silent.destroy() // unacknowledged: both go to the member left [MQTT-4.8.2-6]
      await waitFor(() => got.length >= 2 || !sub.connected, 5000, 'both messages')
      expect(got.map((m) => `${m.topic} ${m.payload}`).sort()).toEqual([`tar/${tag}/x one`, `tar/${tag}/x two`])
      expect(sub.connected).toBe(true)
      await Promise.all([sub.endAsync(), pub.endAsync()])
    }
    expect(await exceptions(n)).toBe(0)
  })
})
