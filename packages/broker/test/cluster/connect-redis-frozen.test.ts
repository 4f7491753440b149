/**
 * CONNECTs that wait for a Redis that does not answer (frozen with SIGSTOP: a paused VM, a
 * stalled disk; a Redis that is down waits the same way, its commands queued on the link), whose
 * clients give up and close before it answers again. Before the fix (seam A29,
 * skipClosedRegistrations; seam onceConnectedOrClosed at once for a closed connection), once Redis
 * answered: a clean client that had gone was registered for good (counted in
 * culex_clients_connected, its client id owned by the node in Redis, a ghost only a CONNECT of the
 * same id replaced), and a persistent client's turn on its id (cluster/session-claim.ts) was kept
 * until it lapsed, so its next CONNECT waited CLAIM_MS and logged 'session claim not given back
 * in time'. Now nothing of them stays: the node counts only its live clients and the client that
 * comes back connects at once, its session whole [MQTT-3.1.2-4] [MQTT-3.2.2-2]. The node answers
 * no CONNECT while Redis is frozen (it cannot look the session up) and says so on /readyz; it
 * does not refuse them (mqtt.js stops reconnecting after a refused CONNACK by default).
 * One real node, one real redis-server.
 */
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'
import { metric } from '../helpers/security-node.js'
import { SESSION_OWNER_KEY } from '../../src/cluster/keys.js'
import { CLAIM_MS } from '../../src/cluster/session-claim.js'

let redis: TestRedis
let node: TestNode
let admin: Redis
const sockets: Socket[] = []

beforeAll(async () => {
  redis = await startRedis()
  node = await startNode(redis.url, 'crf-a')
  admin = new Redis(redis.url)
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  admin.disconnect()
  await closeAllClients()
  await killAll()
})

/** a raw connection that sent its CONNECT; `answered` once anything came back */
async function connectRaw(clientId: string, version: 4 | 5, clean: boolean): Promise<{ sock: Socket; answered: () => boolean }> {
  const sock = netConnect({ port: node.mqtt, host: '127.0.0.1' })
  sockets.push(sock)
  sock.on('error', () => {})
  await once(sock, 'connect')
  let got = false
  sock.on('data', () => (got = true))
  const properties = version === 5 && !clean ? { sessionExpiryInterval: 60 } : undefined
  sock.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean, keepalive: 60, clientId, ...(properties ? { properties } : {}) }, { protocolVersion: version }))
  return { sock, answered: () => got }
}

it('clients that gave up while their CONNECT waited for a frozen Redis leave nothing once it answers: not counted, no id owned, a persistent one connects again at once with its session', async () => {
  // a persistent session with a subscription, to come back to
  const first = await mqttConnect(node.url, { clientId: 'crf-keep', clean: false })
  await first.subscribeAsync('crf/keep', { qos: 1 })
  await first.endAsync()

  redis.proc.child.kill('SIGSTOP')
  const waiting: Array<Awaited<ReturnType<typeof connectRaw>>> = []
  try {
    waiting.push(await connectRaw('crf-clean', 4, true))
    waiting.push(await connectRaw('crf-keep', 4, false))
    waiting.push(await connectRaw('crf-v5', 5, false))
    // the node says it cannot serve (the CONNECTs were read long before: they wait for Redis)
    await waitFor(async () => (await node.readyz()) === 503, 10_000, 'not ready while Redis is frozen')
    expect(waiting.map((w) => w.answered())).toEqual([false, false, false])
    // the clients give up
    for (const w of waiting) w.sock.destroy()
  } finally {
    redis.proc.child.kill('SIGCONT')
  }
  await waitFor(async () => (await node.readyz()) === 200, 10_000, 'ready once Redis answers')

  // the persistent client comes back: its turn on the id was given back when Redis answered, so
  // it does not wait for the claim to lapse (CLAIM_MS); its session is there
  const t0 = Date.now()
  const back = await mqttConnect(node.url, { clientId: 'crf-keep', clean: false })
  const took = Date.now() - t0
  expect(connackOf(back).sessionPresent).toBe(true)
  expect(took).toBeLessThan(CLAIM_MS / 2)
  expect(node.logs().some((l) => l.msg === 'session claim not given back in time: connecting anyway')).toBe(false)
  // its subscription is whole: a message to it arrives
  const got: string[] = []
  back.on('message', (_t, p) => got.push(p.toString()))
  const pub = await mqttConnect(node.url, { clientId: 'crf-pub' })
  await pub.publishAsync('crf/keep', 'after', { qos: 1 })
  await waitFor(() => got.length > 0, 5000, 'the message on the resumed session')
  expect(got).toEqual(['after'])

  // the CONNECTs above went after the stale ones on the same link: what those left is in place.
  // Only the two live clients count, and only they own their ids in Redis
  expect(await metric(node.http, 'culex_clients_connected')).toBe(2)
  const owners = Object.keys(await admin.hgetall(SESSION_OWNER_KEY)).sort()
  expect(owners).toEqual(['crf-keep', 'crf-pub'])
}, 60_000)
