/**
 * Bounded mutation fuzzer: valid MQTT 3.1.1 packet sequences, mutated (bit
 * flips, interesting bytes, insertions, deletions, truncation, splices,
 * rewritten lengths), each sent on a fresh connection to a real node while a
 * well-behaved client publishes QoS 1 to itself. The node must never crash
 * and the well-behaved client must never lose a QoS 1 message.
 *
 * CI runs a few thousand cases; more on demand:
 *   CULEX_FUZZ_CASES=200000 CULEX_FUZZ_SEED=1234 npx vitest run packages/broker/test/security/fuzz.test.ts
 */
import { once } from 'node:events'
import { connect as netConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { afterAll, describe, expect, it } from 'vitest'
import { Canary, connackOf, sleep, spawnNode, stopAll } from '../helpers/security-node.js'

const CASES = Number(process.env.CULEX_FUZZ_CASES ?? 3000)
const SEED = Number(process.env.CULEX_FUZZ_SEED ?? Date.now() % 2 ** 31)
const WORKERS = 16

/** mulberry32: small, seedable, good enough to fuzz with */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet)

function seeds(rand: () => number): Buffer[][] {
  const id = `fz${Math.floor(rand() * 1e9)}`
  const clean = rand() < 0.7
  const connect = gen({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean,
    keepalive: Math.floor(rand() * 120),
    clientId: clean && rand() < 0.1 ? '' : id,
    will: rand() < 0.3 ? { topic: `fuzz/will/${id}`, payload: Buffer.from('bye'), qos: Math.floor(rand() * 3), retain: rand() < 0.5 } : undefined,
  })
  const topic = ['fuzz/a', 'fuzz/b/c', 'fuzz/ü/€', '$SYS/x/new/clients', 'fuzz//x', '/'][Math.floor(rand() * 6)]!
  const filter = ['fuzz/#', 'fuzz/+/c', '#', '+', '$SYS/#', 'fuzz/+/+/#'][Math.floor(rand() * 6)]!
  const mid = 1 + Math.floor(rand() * 65534)
  const body: Buffer[] = [
    gen({ cmd: 'subscribe', messageId: mid, subscriptions: [{ topic: filter, qos: Math.floor(rand() * 3) }, { topic: 'fuzz/x', qos: 1 }] }),
    gen({ cmd: 'publish', topic, payload: Buffer.alloc(Math.floor(rand() * 64), 65), qos: 0, retain: rand() < 0.2 }),
    gen({ cmd: 'publish', topic, payload: Buffer.from('q1'), qos: 1, messageId: mid, retain: rand() < 0.1 }),
    gen({ cmd: 'publish', topic, payload: Buffer.from('q2'), qos: 2, messageId: mid }),
    gen({ cmd: 'pubrel', messageId: mid }),
    gen({ cmd: 'puback', messageId: mid }),
    gen({ cmd: 'pubrec', messageId: mid }),
    gen({ cmd: 'pubcomp', messageId: mid }),
    gen({ cmd: 'unsubscribe', messageId: mid, unsubscriptions: [filter] }),
    gen({ cmd: 'pingreq' }),
    gen({ cmd: 'disconnect' }),
  ]
  const picked: Buffer[] = [connect]
  const n = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < n; i++) picked.push(body[Math.floor(rand() * body.length)]!)
  return [picked]
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x30, 0x10, 0x82, 0xc0, 0xe0, 0x2f, 0x23, 0x2b, 0x24]

function mutate(packets: Buffer[], rand: () => number): Buffer {
  const which = rand() < 0.2 ? 0 : Math.floor(rand() * packets.length) // mostly keep CONNECT valid to reach deeper code
  const p = Buffer.from(packets[which]!)
  let out: Buffer = p
  const rounds = 1 + Math.floor(rand() * 3)
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(rand() * Math.max(1, out.length))
    switch (Math.floor(rand() * 8)) {
      case 0: // bit flip
        if (out.length) out[at] = out[at]! ^ (1 << Math.floor(rand() * 8))
        break
      case 1: // interesting byte
        if (out.length) out[at] = INTERESTING[Math.floor(rand() * INTERESTING.length)]!
        break
      case 2: // insert random bytes
        out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256))), out.subarray(at)])
        break
      case 3: // delete bytes
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + Math.floor(rand() * 4))])
        break
      case 4: // truncate
        out = out.subarray(0, at)
        break
      case 5: // rewrite the remaining length
        if (out.length > 1) out[1] = Math.floor(rand() * 256)
        break
      case 6: // duplicate a chunk
        out = Buffer.concat([out, out.subarray(at, at + 1 + Math.floor(rand() * 16))])
        break
      case 7: // splice with another packet of the sequence
        out = Buffer.concat([out.subarray(0, at), packets[Math.floor(rand() * packets.length)]!.subarray(Math.floor(rand() * 4))])
        break
    }
  }
  const copy = packets.slice()
  copy[which] = out
  return Buffer.concat(copy)
}

async function sendCase(port: number, bytes: Buffer, rand: () => number): Promise<void> {
  const s = netConnect({ port, host: '127.0.0.1' })
  s.on('error', () => {})
  s.on('data', () => {})
  try {
    await once(s, 'connect')
    // sometimes in pieces, to exercise the parser's partial states
    if (rand() < 0.3 && bytes.length > 2) {
      const cut = 1 + Math.floor(rand() * (bytes.length - 1))
      s.write(bytes.subarray(0, cut))
      await sleep(1)
      s.write(bytes.subarray(cut))
    } else {
      s.write(bytes)
    }
    await Promise.race([once(s, 'close'), sleep(40)])
  } catch {
    // resets are expected: the node closes what it does not like
  } finally {
    s.destroy()
  }
}

afterAll(stopAll)

describe('mutation fuzzer', () => {
  it(`survives ${CASES} mutated packet sequences (seed ${SEED}) and the well-behaved client loses no QoS 1 message`, async () => {
    const node = await spawnNode({ connect_timeout_ms: 2000, max_connects_per_s_per_ip: 0, max_packet_size: 65536 })
    const canary = await Canary.start(`mqtt://127.0.0.1:${node.ports.mqtt}`)
    const rand = prng(SEED)
    let next = 0
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (next < CASES && !node.exited()) {
          next++
          const [packets] = seeds(rand)
          await sendCase(node.ports.mqtt, mutate(packets!, rand), rand)
        }
      }),
    )
    const result = await canary.finish()
    console.log(`fuzz: ${CASES} cases, seed ${SEED}; canary sent ${result.sent}, lost ${result.lost}, p99 ${result.p99} ms`)
    expect(node.exited(), `node crashed (seed ${SEED}): ${node.out.join('').slice(-2000)}`).toBe(false)
    expect(result.lost).toBe(0)
    expect(canary.connected).toBe(true)
    expect((await connackOf(node.ports.mqtt)).code).toBe(0)
    expect((await fetch(`http://127.0.0.1:${node.ports.http}/healthz`)).status).toBe(200)
  }, Math.max(120_000, CASES * 5))
})
