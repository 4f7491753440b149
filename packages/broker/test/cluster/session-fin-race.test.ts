/**
 * [MQTT-4.1.0-2] across two nodes (real redis-server, raw MQTT): an MQTT 5 client whose session
 * ends with its connection (Session Expiry Interval 0) sends DISCONNECT and its FIN right behind
 * it, as MQTT.js does, and connects again on the other node, with Clean Start 0, as soon as it
 * sees the close: Session Present 0 [MQTT-3.2.2-2] and none of the old subscriptions. Node A's
 * commands reach Redis late (a delay proxy on its data link, test/helpers/delay-proxy.ts: a busy
 * node or link), so B's CONNECT is served first unless the client sees the close only once A
 * stored the end's mark (seam row A19). Directly, through a real HAProxy (TCP, PROXY v2), and over
 * WebSocket (DISCONNECT, then the close frame: seam row W1). Without the fix (listeners/tcp.ts
 * keepHalfOpen undone; without W1 for WebSocket) every round failed. CULEX_SESSION_FIN_ROUNDS
 * rounds per case (default 3; `npm run test:session-fin:long` runs 100).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { WebSocket } from 'ws'
import { FAST, killAll, spawnProc, startNode, startRedis, tempDir, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { freePort } from '../helpers/ports.js'
import { which } from '../../src/local-cluster/procs.js'
import { DelayProxy } from '../helpers/delay-proxy.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { sessionBack, survived, type Back } from '../helpers/session-back.js'

const ROUNDS = Number(process.env.CULEX_SESSION_FIN_ROUNDS ?? 3)
/** a round takes ~0.8 s (most of it A's commands held by the delay proxy) */
const TIMEOUT_MS = 30_000 + ROUNDS * 2_000
/** how late node A's commands reach Redis */
const LATE_MS = 40

let redis: TestRedis
let proxy: DelayProxy
let a: TestNode
let b: TestNode
let db: Redis
/** HAProxy (TCP mode, PROXY v2) in front of node A */
let haPort: number

beforeAll(async () => {
  redis = await startRedis()
  proxy = new DelayProxy(redis.port, 'culex-fin-a-data')
  await proxy.start()
  ;[a, b] = await Promise.all([startNode(proxy.url, 'fin-a', [...FAST, '--trusted-proxies', '127.0.0.1']), startNode(redis.url, 'fin-b', FAST)])
  db = new Redis(redis.url)
  haPort = await freePort()
  const cfg = join(tempDir(), 'haproxy.cfg')
  const lines = ['defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 30s', '  timeout server 30s', 'frontend mqtt', `  bind 127.0.0.1:${haPort}`, '  default_backend a', 'backend a', `  server a 127.0.0.1:${a.mqtt} send-proxy-v2`, '']
  writeFileSync(cfg, lines.join('\n'))
  const haproxy = spawnProc(which('haproxy') ?? 'haproxy', ['-db', '-f', cfg])
  await waitFor(async () => {
    if (haproxy.child.exitCode !== null) throw new Error(`haproxy exited: ${haproxy.err.join('')}`)
    try {
      const r = await Raw.open(haPort, 4)
      r.destroy()
      return true
    } catch {
      return false
    }
  }, 10_000, 'haproxy listening')
}, 30_000)

afterAll(async () => {
  db?.disconnect()
  destroyAll()
  await killAll()
  await proxy?.close()
})

/** a connection that resumed a session: DISCONNECT (`fields`) and the client's close right behind it, resolved once the client saw the close */
type Resumed = (fields: Record<string, unknown>) => Promise<void>
const RESUME = { clientId: '', clean: false, properties: { sessionExpiryInterval: 0 } }

/** over TCP (node A directly or through HAProxy): DISCONNECT, then the FIN */
const overTcp = (port: () => number) => async (id: string): Promise<Resumed> => {
  const c = await Raw.open(port(), 5)
  const ack = await c.connect({ ...RESUME, clientId: id })
  expect(ack.sessionPresent).toBe(true)
  return async (fields) => {
    c.send({ cmd: 'disconnect', ...fields })
    c.sock.end()
    await c.closedBy(5000)
  }
}

/** over WebSocket on node A: DISCONNECT, then the close frame (MQTT.js' end() over WebSocket) */
const overWs = async (id: string): Promise<Resumed> => {
  const ws = new WebSocket(`ws://127.0.0.1:${a.ws}/mqtt`, 'mqtt')
  ws.on('error', () => {})
  await once(ws, 'open')
  const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as Packet, { protocolVersion: 5 })
  const parser = mqttPacket.parser({ protocolVersion: 5 })
  ws.on('message', (d: Buffer) => parser.parse(d))
  const connack = new Promise<Packet & { sessionPresent?: boolean }>((resolve) => parser.once('packet', resolve))
  ws.send(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, keepalive: 60, ...RESUME, clientId: id }))
  expect((await connack).sessionPresent).toBe(true)
  return async (fields) => {
    const closed = once(ws, 'close')
    ws.send(gen({ cmd: 'disconnect', ...fields }))
    ws.close()
    await closed
  }
}

/**
 * `id` gets a session with a subscription to `old/<id>` kept in Redis (Session Expiry 60), then
 * resumes it on node A with a Session Expiry Interval of 0 (`resume`): it ends when that connection closes
 */
async function endingSession(id: string, resume: (id: string) => Promise<Resumed>): Promise<Resumed> {
  const first = await Raw.open(a.mqtt, 5)
  await first.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await first.subscribe(`old/${id}`, 1)
  await first.disconnect({ reasonCode: 0 })
  return resume(id)
}

/** `rounds` of: an ending session on A (resumed by `resume`), DISCONNECT (`fields`) and the close at once, back on B as soon as the close is seen */
async function race(name: string, fields: Record<string, unknown>, resume = overTcp(() => a.mqtt)): Promise<Back[]> {
  const seen: Back[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const id = `${name}-${r}`
    proxy.toRedisMs = 0
    const disconnectAndClose = await endingSession(id, resume)
    // A's connect is done and its claim given back (cluster/session-claim.ts): B's CONNECT does not
    // wait for that, only (with the fix) for the end's mark
    await waitFor(async () => (await db.exists(`culex:session-claim:${id}`)) === 0, 3000, `claim of ${id} given back`)
    proxy.toRedisMs = LATE_MS
    await disconnectAndClose(fields)
    seen.push(await sessionBack(b.mqtt, id))
  }
  proxy.toRedisMs = 0
  return seen
}

/** the rounds where the ended session was still there */

describe('cluster: DISCONNECT then FIN at once, back at once on the other node: the session is gone [MQTT-4.1.0-2]', () => {
  it('[MQTT-3.14.4-1] DISCONNECT (Session Expiry 0) and FIN together: the server closes only once the end is marked; Session Present 0 on B, no old subscription', async () => {
    expect(survived(await race('fin-0', { reasonCode: 0 }))).toEqual([])
  }, TIMEOUT_MS)

  it('[MQTT-3.14.2-2] DISCONNECT raising Session Expiry from 0 (a protocol error, the session still ends) and FIN together: Session Present 0 on B', async () => {
    expect(survived(await race('fin-pe', { reasonCode: 0, properties: { sessionExpiryInterval: 60 } }))).toEqual([])
  }, TIMEOUT_MS)

  it('[MQTT-3.14.4-1] behind HAProxy (TCP, PROXY v2): it forwards the FIN and closes the client\'s side once node A closed its own; Session Present 0 on B', async () => {
    expect(survived(await race('fin-ha', { reasonCode: 0 }, overTcp(() => haPort)))).toEqual([])
  }, TIMEOUT_MS)

  it('[MQTT-3.14.4-1] over WebSocket: DISCONNECT then the close frame at once: the close frame is answered only once the end is marked (seam W1); Session Present 0 on B', async () => {
    expect(survived(await race('fin-ws', { reasonCode: 0 }, overWs))).toEqual([])
  }, TIMEOUT_MS)
})
