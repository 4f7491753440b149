/**
 * A persistent session's acknowledgement (PUBACK) in a cluster (cluster/session-queue.ts, outgoing.ts
 * ACKED_LUA), against a real redis-server: the message leaves the session's queue and its body is
 * freed once no session holds it, whether or not the acknowledged message is asked for; it is read
 * and decoded only when asked (Aedes' 'ack' event is its only reader: cluster/persistence.ts asks
 * when the broker has a listener for it).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { OutgoingStore } from '../../src/cluster/outgoing.js'
import { SessionQueues } from '../../src/cluster/session-queue.js'
import { outgoingKey } from '../../src/cluster/keys.js'
import { killAll, startRedis } from '../helpers/cluster-procs.js'

let db: Redis

beforeAll(async () => {
  db = new Redis((await startRedis()).url)
})
afterAll(async () => {
  db.disconnect()
  await killAll()
})

async function queuedAndSent(queues: SessionQueues, client: { id: string; clean: boolean }, counter: number, messageId: number): Promise<string> {
  const packet = { cmd: 'publish', topic: 'acked/t', payload: Buffer.from(`m${counter}`), qos: 1, retain: false, dup: false, brokerId: 'ack-node', brokerCounter: counter }
  await queues.enqueue([{ clientId: client.id, qos: 1 }], packet as never)
  await queues.update(client as never, { ...packet, messageId } as never)
  return `packet:ack-node:${counter}`
}

it('[MQTT-4.3.2-1] a PUBACK takes the message off the queue and frees its body; the acknowledged message comes back only when asked for', async () => {
  const queues = new SessionQueues(new OutgoingStore(db))
  const client = { id: 'acked-s', clean: false }
  const asked = await queuedAndSent(queues, client, 1, 7)
  const notAsked = await queuedAndSent(queues, client, 2, 8)
  expect(await db.lrange(outgoingKey(client.id), 0, -1)).toEqual([asked, notAsked])

  const orig = (await queues.acked(client as never, { messageId: 7 }, true)) as { topic: string; payload: Buffer; messageId: number }
  expect({ topic: orig.topic, payload: orig.payload.toString(), messageId: orig.messageId }).toEqual({ topic: 'acked/t', payload: 'm1', messageId: 7 })
  expect(await queues.acked(client as never, { messageId: 8 }, false)).toBeUndefined()

  // both off the queue, both bodies and their reference counts gone
  expect(await db.llen(outgoingKey(client.id))).toBe(0)
  expect(await db.exists(asked, `${asked}:offlineCount`, notAsked, `${notAsked}:offlineCount`)).toBe(0)
  // a repeated PUBACK finds nothing
  expect(await queues.acked(client as never, { messageId: 8 }, true)).toBeUndefined()
})
