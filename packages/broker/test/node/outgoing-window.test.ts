/**
 * max_outgoing_inflight (limits/delivery.ts): at most N QoS 1 messages are sent to a client and not
 * yet acknowledged; the rest wait in the node, in order, and come as it acknowledges. A persistent
 * session that goes away with messages still waiting gets every one of them at its next CONNECT.
 * One node in memory, and two nodes with sessions in Redis (published on the other node).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { useTestNode } from '../helpers/node.js'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe, type AnyPacket, type Raw } from '../helpers/raw-mqtt.js'

const WINDOW = 5
const COUNT = 20

const seqOf = (p: AnyPacket): number => Number(String(p.payload))

/** COUNT QoS 1 messages on `topic`, then a QoS 0 marker on `topic/marker`; resolves when all are acknowledged */
async function publishAll(port: number, topic: string, id: string): Promise<void> {
  const { raw: pub } = await rawClient(port, { clientId: id })
  for (let i = 0; i < COUNT; i++) pub.send({ cmd: 'publish', topic, payload: String(i), qos: 1, messageId: i + 1, retain: false, dup: false })
  await pub.until((ps) => ps.filter((p) => p.cmd === 'puback').length === COUNT, 10_000, `${COUNT} PUBACKs`)
  // QoS 0 is not held by the window: once it arrives, every QoS 1 message before it has been dealt with
  pub.send({ cmd: 'publish', topic: `${topic}/marker`, payload: 'm', qos: 0, retain: false, dup: false })
}

async function subscriber(port: number, clientId: string, topic: string, clean: boolean): Promise<Raw> {
  const { raw } = await rawClient(port, { clientId, clean })
  await rawSubscribe(raw, topic, 1, 1)
  await rawSubscribe(raw, `${topic}/marker`, 0, 2)
  return raw
}

const qos1 = (raw: Raw): AnyPacket[] => raw.publishes().filter((p) => p.qos === 1)
const marked = (raw: Raw): Promise<void> => raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.qos === 0), 10_000, 'the QoS 0 marker')

async function windowHoldsTheRest(subPort: number, pubPort: number, tag: string): Promise<void> {
  const topic = `window/${tag}`
  const sub = await subscriber(subPort, `win-sub-${tag}`, topic, true)
  await publishAll(pubPort, topic, `win-pub-${tag}`)
  await marked(sub)
  // exactly the window, nothing more, while nothing is acknowledged
  expect(qos1(sub).map(seqOf)).toEqual([0, 1, 2, 3, 4])
  sub.send({ cmd: 'puback', messageId: qos1(sub)[0]!.messageId })
  await sub.until(() => qos1(sub).length === WINDOW + 1, 5000, 'one more after one PUBACK')
  // acknowledging as they come: the rest arrive, in order, once each [MQTT-4.6.0-6]
  const acked = new Set<number | undefined>()
  const ackAll = (): void => {
    for (const p of qos1(sub)) {
      if (acked.has(p.messageId)) continue
      acked.add(p.messageId)
      sub.send({ cmd: 'puback', messageId: p.messageId })
    }
  }
  acked.add(qos1(sub)[0]!.messageId)
  ackAll()
  await sub.until(() => {
    ackAll()
    return qos1(sub).length >= COUNT
  }, 10_000, `all ${COUNT} QoS 1 messages`)
  expect(qos1(sub).map(seqOf)).toEqual(Array.from({ length: COUNT }, (_, i) => i))
}

async function sessionKeepsWhatWaited(subPort: number, pubPort: number, tag: string): Promise<void> {
  const topic = `window-session/${tag}`
  const id = `win-persist-${tag}`
  const first = await subscriber(subPort, id, topic, false)
  await publishAll(pubPort, topic, `win-ppub-${tag}`)
  // a persistent session's QoS 1 deliveries pass the session store first (a Redis round trip) and
  // may come after the QoS 0 marker: wait for the window, then for a second marker sent after it
  await first.until(() => qos1(first).length >= WINDOW, 10_000, 'the window')
  const { raw: marker } = await rawClient(pubPort, { clientId: `win-pmark-${tag}` })
  marker.send({ cmd: 'publish', topic: `${topic}/marker`, payload: 'm2', qos: 0, retain: false, dup: false })
  await first.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === 'm2'), 10_000, 'the second marker')
  expect(qos1(first)).toHaveLength(WINDOW)
  await first.drop()
  // [MQTT-4.4.0-1] the unacknowledged ones again (DUP), and every one that waited behind them
  const { raw: again } = await rawClient(subPort, { clientId: id, clean: false, autoAck: true })
  await again.until(() => new Set(qos1(again).map(seqOf)).size === COUNT, 10_000, `all ${COUNT} after reconnect`)
  expect([...new Set(qos1(again).map(seqOf))].sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i))
}

afterEach(closeRaw)

describe('max_outgoing_inflight, one node in memory', () => {
  const t = useTestNode({ max_outgoing_inflight: WINDOW, allow_anonymous: true })
  it('a subscriber that does not acknowledge gets the window and no more; the rest come in order as it acknowledges', async () => {
    await windowHoldsTheRest(t.node.ports.mqtt, t.node.ports.mqtt, 'mem')
  })
  it('[MQTT-4.4.0-1] a persistent session that leaves with messages waiting gets all of them at its next CONNECT', async () => {
    await sessionKeepsWhatWaited(t.node.ports.mqtt, t.node.ports.mqtt, 'mem')
  })
})

describe('a subscriber that reads but never acknowledges', () => {
  const t = useTestNode({ max_outgoing_inflight: WINDOW, max_queued: 50, allow_anonymous: true })
  it('is disconnected once more than max_queued wait for it and it acknowledged nothing for seconds; every other subscriber gets every message', async () => {
    const port = t.node.ports.mqtt
    const topic = 'window/hung'
    const { raw: hung } = await rawClient(port, { clientId: 'win-hung' })
    await rawSubscribe(hung, topic, 1)
    const { raw: good } = await rawClient(port, { clientId: 'win-good', autoAck: true })
    await rawSubscribe(good, topic, 1)
    const { raw: pub } = await rawClient(port, { clientId: 'win-hung-pub' })
    const n = 500
    for (let i = 0; i < n; i++) pub.send({ cmd: 'publish', topic, payload: String(i), qos: 1, messageId: i + 1, retain: false, dup: false })
    await pub.until((ps) => ps.filter((p) => p.cmd === 'puback').length === n, 20_000, `${n} PUBACKs`)
    await good.until(() => qos1(good).length >= n, 10_000, `${n} messages at the subscriber that acknowledges`)
    expect(qos1(good).map(seqOf)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(qos1(hung).length).toBe(WINDOW)
    // more than max_queued wait for it and it acknowledged nothing for seconds: the next message cuts it
    let next = n
    const more = setInterval(() => {
      next++
      pub.send({ cmd: 'publish', topic, payload: String(next - 1), qos: 1, messageId: next, retain: false, dup: false })
    }, 250)
    try {
      await hung.until(() => hung.closed, 15_000, 'the subscriber that never acknowledges disconnected')
    } finally {
      clearInterval(more)
    }
    expect(qos1(hung).length).toBe(WINDOW)
    await pub.until((ps) => ps.filter((p) => p.cmd === 'puback').length === next, 10_000, 'every PUBACK')
    await good.until(() => qos1(good).length >= next, 10_000, 'every message at the subscriber that acknowledges')
  }, 30_000)
})

describe('max_outgoing_inflight, two nodes, sessions in Redis', () => {
  let a: TestNode
  let b: TestNode
  beforeAll(async () => {
    const redis = await startRedis()
    const flags = ['--max-outgoing-inflight', String(WINDOW)]
    ;[a, b] = await Promise.all([startNode(redis.url, 'win-a', flags), startNode(redis.url, 'win-b', flags)])
  })
  afterAll(killAll)
  it('the same for messages published on the other node', async () => {
    await windowHoldsTheRest(a.mqtt, b.mqtt, 'redis')
  })
  it('[MQTT-4.4.0-1] a persistent session in Redis gets every waiting message at its next CONNECT', async () => {
    await sessionKeepsWhatWaited(a.mqtt, b.mqtt, 'redis')
  })
})
