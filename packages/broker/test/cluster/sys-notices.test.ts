/**
 * Aedes' per-connection $SYS notices in a cluster (seam/aedes-sys-clients.ts, issue 15: cluster
 * connects), on two real nodes and a real Redis, as an operator watching Redis and a subscriber
 * see them:
 * - `$SYS/<node>/new/clients` crosses the bus on every CONNECT (the other nodes close their own
 *   connection of a client id taken over through it), and a subscriber on another node hears it;
 * - `$SYS/<node>/disconnect/clients` crosses it only while a subscriber somewhere may hear it
 *   (cluster/interest.ts): nobody subscribed, a close costs the other nodes nothing; a subscriber
 *   to `$SYS/#` or `$SYS/+/disconnect/clients` on another node gets every client that leaves.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
let monitor: ChildProcess | undefined

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'sys-a'), startNode(redis.url, 'sys-b')])
})
afterAll(async () => {
  monitor?.kill()
  await closeAllClients()
  await killAll()
})

async function connected(node: TestNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text()
  return Number(/^culex_clients_connected (\S+)$/m.exec(text)?.[1])
}

/**
 * every cluster bus PUBLISH Redis runs from now on, as `redis-cli monitor` prints it (the batches
 * carry their topics in clear): on a node's own channel, or the shared one in its first 1.5 s
 */
async function watchBus(): Promise<string[]> {
  const seen: string[] = []
  monitor = spawn('redis-cli', ['-p', String(redis.port), 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] })
  let rest = ''
  let started = false
  monitor.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n')
    rest = lines.pop()!
    // redis-cli prints OK once Redis has it as a monitor
    started ||= lines.includes('OK')
    seen.push(...lines.filter((l) => /"publish" "culex:bus(:n:[^"]*)?" /i.test(l)))
  })
  await waitFor(() => started, 5000, 'redis-cli monitor')
  return seen
}
it('nobody subscribed: a close sends no $SYS notice to the other nodes; a CONNECT still does, and a new/clients subscriber on B hears it', async () => {
  const bus = await watchBus()
  const watcher = await mqttConnect(b.url, { clientId: 'sys-watch-new' })
  const news = collect(watcher)
  await watcher.subscribeAsync('$SYS/+/new/clients', { qos: 0 })
  const markers = await mqttConnect(b.url, { clientId: 'sys-marker-sub' })
  const marks = collect(markers)
  await markers.subscribeAsync('sys/marker', { qos: 1 })
  const pub = await mqttConnect(a.url, { clientId: 'sys-marker-pub' })
  const ids = Array.from({ length: 10 }, (_, i) => `sys-quiet-${i}`)
  const clients = await Promise.all(ids.map((id) => mqttConnect(a.url, { clientId: id })))
  await waitFor(() => ids.every((id) => news.some((m) => m.payload === id && m.topic === '$SYS/sys-a/new/clients')), 5000, 'every new/clients notice on B')
  await Promise.all(clients.map((c) => c.endAsync()))
  // A counts them gone in the call that would publish their notices
  await waitFor(async () => (await connected(a)) === 1, 5000, 'the 10 closes on A')
  // the marker goes on the bus after anything A sent before it (one channel per node, in order)
  await pub.publishAsync('sys/marker', 'm', { qos: 1 })
  await waitFor(() => marks.length === 1 && bus.some((batch) => batch.includes('sys/marker')), 5000, 'the marker on B and in the monitor')
  expect(bus.filter((batch) => batch.includes('new/clients')).length).toBeGreaterThan(0)
  expect(bus.filter((batch) => batch.includes('disconnect/clients'))).toEqual([])
  monitor?.kill()
  monitor = undefined
})

it('a node that keeps no view of the others (puback_no_subscribers false) gets the notices of a node that does: its $SYS/# subscriber hears closes on A', async () => {
  // C writes no filter set to Redis, so A's view of the other nodes is incomplete while C is live
  const c = await startNode(redis.url, 'sys-c', ['--puback-no-subscribers', 'false'])
  const all = await mqttConnect(c.url, { clientId: 'sys-watch-c' })
  const got = collect(all)
  await all.subscribeAsync('$SYS/+/disconnect/clients', { qos: 0 })
  // A counts C live once its registry read saw C's beat: closes on A until C hears one
  let n = 0
  await waitFor(async () => {
    const x = await mqttConnect(a.url, { clientId: `sys-c-probe-${n++}` })
    await x.endAsync()
    return got.some((m) => m.topic === '$SYS/sys-a/disconnect/clients')
  }, 10_000, 'a disconnect notice from A on C')
  const ids = Array.from({ length: 3 }, (_, i) => `sys-c-leaving-${i}`)
  for (const id of ids) {
    const x = await mqttConnect(a.url, { clientId: id })
    await x.endAsync()
  }
  await waitFor(() => got.filter((m) => m.payload.startsWith('sys-c-leaving-')).length === 3, 5000, 'three notices on C')
  expect(got.filter((m) => m.payload.startsWith('sys-c-leaving-')).map((m) => m.payload)).toEqual(ids)
})

it('a subscriber to $SYS/# or $SYS/+/disconnect/clients on B gets every client that leaves A, in order', async () => {
  const all = await mqttConnect(b.url, { clientId: 'sys-watch-all' })
  const gotAll = collect(all)
  await all.subscribeAsync('$SYS/#', { qos: 0 })
  const gone = await mqttConnect(b.url, { clientId: 'sys-watch-gone' })
  const gotGone = collect(gone)
  await gone.subscribeAsync('$SYS/+/disconnect/clients', { qos: 0 })
  // B announces its new filters to A through Redis (no SUBACK waits for it): closes on A until one is heard
  let n = 0
  await waitFor(async () => {
    const c = await mqttConnect(a.url, { clientId: `sys-probe-${n++}` })
    await c.endAsync()
    return gotAll.some((m) => m.topic.endsWith('/disconnect/clients')) && gotGone.some((m) => m.topic.endsWith('/disconnect/clients'))
  }, 10_000, 'A sends disconnect notices once B subscribed')
  const ids = Array.from({ length: 5 }, (_, i) => `sys-leaving-${i}`)
  for (const id of ids) {
    const c = await mqttConnect(a.url, { clientId: id })
    await c.endAsync()
  }
  const leaving = (got: typeof gotAll): string[] => got.filter((m) => m.topic === '$SYS/sys-a/disconnect/clients' && m.payload.startsWith('sys-leaving-')).map((m) => m.payload)
  await waitFor(() => leaving(gotAll).length === 5 && leaving(gotGone).length === 5, 5000, 'five disconnect notices on B')
  expect(leaving(gotAll)).toEqual(ids)
  expect(leaving(gotGone)).toEqual(ids)
  expect(gotAll.filter((m) => m.topic === '$SYS/sys-a/new/clients' && m.payload.startsWith('sys-leaving-')).map((m) => m.payload)).toEqual(ids)
})
