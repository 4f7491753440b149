/**
 * The claim race across two nodes (real redis-server, raw MQTT 5 and 3.1.1): two CONNECTs with the same
 * client id and Clean Start 0, one on each node at the same moment, for a session holding queued
 * QoS 1 messages. One connection takes the session over from the other [MQTT-3.1.4-3]: exactly
 * one is left, the other is closed, after DISCONNECT 0x8E (Session taken over) in MQTT 5; the survivor
 * gets every queued message, a message sent again only with the DUP flag [MQTT-3.3.1-1]
 * [MQTT-4.4.0-1] (neither client acknowledges anything until the claim is settled).
 * CULEX_SESSION_CLAIM_ROUNDS rounds each (default 6).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAST, killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { Raw, destroyAll, type Any } from '../conformance/raw.js'

const ROUNDS = Number(process.env.CULEX_SESSION_CLAIM_ROUNDS ?? 6)
const QUEUED = 10

let redis: TestRedis
let nodes: TestNode[]

beforeAll(async () => {
  redis = await startRedis()
  nodes = await Promise.all([startNode(redis.url, 'claim-a', FAST), startNode(redis.url, 'claim-b', FAST)])
})

afterAll(async () => {
  destroyAll()
  await killAll()
})

const open = (i: number, version: 4 | 5 = 5): Promise<Raw> => Raw.open(nodes[i % 2]!.mqtt, version)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface Outcome {
  id: string
  /** per connection (node A, node B): closed, DISCONNECT reason codes, CONNACK Session Present */
  conns: Array<{ closed: boolean; disconnects: unknown[]; present: unknown }>
  /** what the survivor got: payload, dup */
  got: Array<[string, boolean]>
  missing: string[]
}

/** waits until `c` got a packet `f` accepts (whatever was read of it before) */
async function arrived(c: Raw, f: (p: Any) => boolean): Promise<void> {
  const end = Date.now() + 5000
  while (!c.packets.some(f)) {
    if (Date.now() > end) throw new Error(`not arrived; got ${c.packets.map((p) => p.cmd).join(',')}`)
    await sleep(10)
  }
}

/** a session `id` with a QoS 1 subscription and QUEUED messages waiting, claimed at once from both nodes */
async function claim(id: string, version: 4 | 5): Promise<Outcome> {
  const expiry = version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}
  const first = await open(0, version)
  await first.connect({ clientId: id, clean: false, ...expiry })
  await first.subscribe(`q/${id}`, 1)
  await first.disconnect(version === 5 ? { reasonCode: 0 } : {})
  const pub = await open(1)
  await pub.connect({ clientId: `${id}-pub` })
  const sent = Array.from({ length: QUEUED }, (_, i) => `m${i}`)
  for (let i = 0; i < sent.length; i++) await pub.publish(`q/${id}`, sent[i]!, 1, false, i + 1)

  const both = await Promise.all([open(0, version), open(1, version)])
  for (const c of both) c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: false, keepalive: 60, clientId: id, ...expiry })
  // settled: one connection closed (or both); then 500 ms in which a late takeover notice
  // must not close the survivor (a statement about what must not happen)
  const until = Date.now() + 5000
  while (!both.some((c) => c.closed) && Date.now() < until) await sleep(10)
  await sleep(500)
  const survivor = both.find((c) => !c.closed)
  let got: Array<[string, boolean]> = []
  if (survivor) {
    // a marker behind the queue: once it is here, every queued message was sent (or is lost)
    survivor.send({ cmd: 'subscribe', messageId: 999, subscriptions: [{ topic: `mark/${id}`, qos: 0 }] })
    await arrived(survivor, (p) => p.cmd === 'suback')
    await pub.publish(`mark/${id}`, 'mark', 0)
    await arrived(survivor, (p) => p.cmd === 'publish' && p.topic === `mark/${id}`)
    got = survivor.packets.filter((p) => p.cmd === 'publish' && p.topic === `q/${id}`).map((p) => [String(p.payload), p.dup === true])
  }
  pub.destroy()
  const conns = both.map((c) => ({
    closed: c.closed,
    disconnects: c.packets.filter((p) => p.cmd === 'disconnect').map((p) => p.reasonCode),
    present: c.packets.find((p) => p.cmd === 'connack')?.sessionPresent,
  }))
  for (const c of both) c.destroy()
  return { id, conns, got, missing: sent.filter((m) => !got.some(([p]) => p === m)) }
}

/** what is wrong with an outcome: not exactly one survivor, a loser without 0x8E, a message lost, a second copy without DUP */
function faults(o: Outcome, version: 4 | 5): string[] {
  const out: string[] = []
  const alive = o.conns.filter((c) => !c.closed)
  if (alive.length !== 1) out.push(`${alive.length} connections left`)
  for (const c of o.conns.filter((c) => c.closed)) if (version === 5 && c.present !== undefined && !c.disconnects.includes(0x8e)) out.push(`loser without 0x8E (${JSON.stringify(c)})`)
  if (alive.length === 1 && o.missing.length > 0) out.push(`lost ${o.missing.join(',')}`)
  const seen = new Set<string>()
  for (const [p, dup] of o.got) {
    if (seen.has(p) && !dup) out.push(`${p} again without DUP`)
    seen.add(p)
  }
  return out
}

describe('cluster: two CONNECTs of one client id at once on two nodes [MQTT-3.1.4-3]', () => {
  for (const version of [5, 4] as const) {
    it(`[MQTT-3.1.4-3] MQTT ${version === 5 ? '5' : '3.1.1'}: exactly one connection keeps the session, the other ${version === 5 ? 'gets DISCONNECT 0x8E' : 'is closed'}; [MQTT-4.4.0-1] its queued QoS 1 messages all reach the survivor, again only with DUP (${ROUNDS} rounds)`, async () => {
      const bad: Array<{ id: string; faults: string[]; outcome: Outcome }> = []
      for (let r = 0; r < ROUNDS; r++) {
        const o = await claim(`claim${version}-${r}`, version)
        const f = faults(o, version)
        if (f.length > 0) bad.push({ id: o.id, faults: f, outcome: o })
      }
      expect(bad).toEqual([])
    }, 120_000)
  }
})
