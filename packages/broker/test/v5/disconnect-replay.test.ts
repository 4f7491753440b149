/**
 * A v5 client the server closes while its session's queue is still being replayed (after the
 * CONNACK, before Aedes counts it connected) is told why, as it is later [MQTT-3.14.0-1]: a
 * takeover gets DISCONNECT 0x8E [MQTT-3.1.4-3], a DISCONNECT turning Session Expiry 0 into 60
 * gets DISCONNECT 0x82 [MQTT-3.14.2-2]. Real nodes (one alone; two with redis-server), raw MQTT.
 * The resumed session has QUEUED QoS 1 messages, so the replay lasts; the takeover or the
 * DISCONNECT is sent as the CONNACK arrives. No QoS 1 message is lost: the new connection of a
 * taken-over session gets them all. (In a cluster a takeover waits for the replay to end,
 * cluster/session-claim.ts, unless it lasts over CLAIM_MS: not in this short file.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { queuedSession } from '../helpers/queued-session.js'

const QUEUED = 2000

afterAll(() => destroyAll())

const connect = (id: string, sessionExpiryInterval: number): Record<string, unknown> => ({
  cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, keepalive: 60, clientId: id, properties: { sessionExpiryInterval },
})
const publishes = (c: Raw): number => c.packets.filter((p) => p.cmd === 'publish').length

/** `id`'s session resumed on `port`; `then` runs as the first bytes from the server (its CONNACK) arrive, the replay only begun */
async function resume(port: number, id: string, sessionExpiryInterval: number, then: (c: Raw) => void): Promise<Raw> {
  const c = await Raw.open(port, 5)
  c.sock.once('data', () => then(c))
  c.send(connect(id, sessionExpiryInterval))
  expect((await c.expect('connack')).sessionPresent).toBe(true)
  return c
}

/** the reason code of the DISCONNECT `c` got before the server closed it (undefined: none) */
async function closedWith(c: Raw): Promise<number | undefined> {
  await c.closedBy(15_000)
  return c.packets.find((p) => p.cmd === 'disconnect')?.reasonCode as number | undefined
}

/** every queued message arrives at `c` (acknowledged as it comes) */
async function allArrive(c: Raw): Promise<void> {
  const got = new Set<string>()
  let read = 0
  await waitFor(
    () => {
      for (; read < c.packets.length; read++) {
        const p = c.packets[read]!
        if (p.cmd !== 'publish') continue
        got.add(String(p.payload))
        c.send({ cmd: 'puback', messageId: p.messageId, reasonCode: 0 })
      }
      return got.size === QUEUED
    },
    30_000,
    `${QUEUED} queued messages at the new connection`,
  )
}

/** a DISCONNECT with Session Expiry 60 after a CONNECT with 0, sent as the CONNACK arrives: DISCONNECT 0x82 during the replay */
async function expiryFromZero(port: number, id: string): Promise<void> {
  await queuedSession(port, id, QUEUED)
  const c = await resume(port, id, 0, (c) => c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } }))
  expect(await closedWith(c)).toBe(0x82)
  // it came during the replay: the queue had not all reached the connection
  expect(publishes(c)).toBeLessThan(QUEUED)
}

describe('one node: a server DISCONNECT during the replay of the queue [MQTT-3.14.0-1]', () => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode()
  })
  afterAll(() => node?.close())

  it('session taken over as the CONNACK arrives: DISCONNECT 0x8E [MQTT-3.1.4-3], no QoS 1 message lost', async () => {
    const port = node.ports.mqtt
    const id = 'replay-take'
    await queuedSession(port, id, QUEUED)
    const second = await Raw.open(port, 5)
    const first = await resume(port, id, 60, () => second.send(connect(id, 60)))
    expect(await closedWith(first)).toBe(0x8e)
    expect(publishes(first)).toBeLessThan(QUEUED)
    expect((await second.expect('connack', 15_000)).sessionPresent).toBe(true)
    await allArrive(second)
  }, 60_000)

  it('a DISCONNECT turning Session Expiry 0 into 60 right after the CONNACK: DISCONNECT 0x82 [MQTT-3.14.2-2]', async () => {
    await expiryFromZero(node.ports.mqtt, 'replay-expiry-1')
  }, 60_000)
})

describe('cluster node: a server DISCONNECT during the replay of the queue [MQTT-3.14.0-1]', () => {
  let cluster: TestNode
  beforeAll(async () => {
    const redis = await startRedis()
    cluster = await startNode(redis.url, 'replay-a', FAST)
  }, 30_000)
  afterAll(() => killAll())

  it('a DISCONNECT turning Session Expiry 0 into 60 right after the CONNACK: DISCONNECT 0x82 [MQTT-3.14.2-2]', async () => {
    await expiryFromZero(cluster.mqtt, 'replay-expiry-2')
  }, 60_000)
})
