/**
 * Found by the MQTT 5 fuzzer (security/fuzz.test.ts, seed 2): mqtt-packet 9 parses a property
 * that comes twice as an array and a string property that is not UTF-8 as null, and Aedes
 * computed with both. A CONNECT or DISCONNECT with its Session Expiry Interval twice ended the
 * node process when the connection closed (a timer of NaN ms threw in aedes'
 * scheduleSessionExpiry), a Will Delay Interval twice did the same through the will's timer, a
 * Response Topic that is not UTF-8 threw in the PUBLISH handler. Each is a Protocol Error or a
 * Malformed Packet now (limits/packet-check.ts): that connection is closed [MQTT-4.13.1-1], the
 * node and its other clients carry on, and no exception escapes. Against the built CLI (a crash
 * is an exit of that process).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collect } from '../helpers/node.js'
import { connect, spawnNode, stopAll, waitFor, type SpawnedNode } from '../helpers/security-node.js'
import { closesWithin, nextPacket, openRaw } from '../helpers/fuzz/conn.js'
import { frame, vbi } from '../helpers/fuzz/packets-v5.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex')
const str = (s: string): Buffer => Buffer.concat([hex(s.length.toString(16).padStart(4, '0')), Buffer.from(s)])
const props = (...p: Buffer[]): Buffer => {
  const b = Buffer.concat(p)
  return Buffer.concat([vbi(b.length), b])
}
const SESSION_EXPIRY_60 = hex('11 0000003c')
const WILL_DELAY_5 = hex('18 00000005')
/** a v5 CONNECT: clean start, keep alive 60, `connectProps`, and a Will (QoS 0) when `willProps` is given */
const connectV5 = (clientId: string, connectProps: Buffer, willProps?: Buffer): Buffer =>
  frame(0x10, str('MQTT'), hex(willProps ? '05 06 003c' : '05 02 003c'), connectProps, str(clientId), ...(willProps ? [willProps, str(`v5pv/will/${clientId}`), str('bye')] : []))

let node: SpawnedNode
beforeAll(async () => {
  node = await spawnNode({ max_connects_per_s_per_ip: 0 })
})
afterAll(stopAll)

async function clientErrors(reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.ports.http}/metrics`)).text()
  return Number(new RegExp(`^culex_client_errors_total\\{reason="${reason}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
}

interface Case {
  name: string
  /** the CONNECT, and what is sent after its CONNACK 0 (none: the CONNECT itself is the bad packet) */
  connect: (id: string) => Buffer
  after?: Buffer
}
const cases: Case[] = [
  { name: 'a CONNECT with its Session Expiry Interval twice (MQTT 5.0 §3.1.2.11.2)', connect: (id) => connectV5(id, props(SESSION_EXPIRY_60, SESSION_EXPIRY_60)) },
  {
    name: 'a Will with its Will Delay Interval twice (MQTT 5.0 §3.1.3.2.2)',
    connect: (id) => connectV5(id, props(SESSION_EXPIRY_60), props(WILL_DELAY_5, WILL_DELAY_5)),
  },
  {
    name: 'a DISCONNECT with its Session Expiry Interval twice (MQTT 5.0 §3.14.2.2.2)',
    connect: (id) => connectV5(id, props(SESSION_EXPIRY_60)),
    after: frame(0xe0, hex('00'), props(hex('11 0000001e'), hex('11 0000001e'))),
  },
  {
    // the property block ends after the string's length: mqtt-packet does not read on past its
    // null (a string with more properties after it fails on the next id), the two bytes are the payload
    name: 'a QoS 1 PUBLISH whose Response Topic is not UTF-8 [MQTT-1.5.4-1]',
    connect: (id) => connectV5(id, props()),
    after: frame(0x32, str('v5pv/t'), hex('0007'), hex('03 08 0002'), hex('fffe')),
  },
]

/** a user property k=v (7 bytes) */
const KV = hex('26 0001 6b 0001 76')
/** a QoS 1 PUBLISH on v5pv/t, packet id 7, with the property bytes `p` and the payload "x" */
const publishWith = (...p: Buffer[]): Buffer => frame(0x32, str('v5pv/t'), hex('0007'), props(...p), Buffer.from('x'))
/**
 * Found after the first fix: mqtt-packet replaces a first copy that is 0, '' or false by the
 * second instead of making an array, and, after a User Property string that is not UTF-8 (null),
 * reads on from the wrong place (seam/mqtt-parse-props.ts). Each packet below passed as a
 * well-formed one: the bytes after the bad string read as more properties.
 */
const falsyFirst: Case[] = [
  { name: 'a CONNECT with its Session Expiry Interval twice, the first 0 (MQTT 5.0 §3.1.2.11.2)', connect: (id) => connectV5(id, props(hex('11 00000000'), SESSION_EXPIRY_60)) },
  {
    name: 'a QoS 1 PUBLISH with its Payload Format Indicator twice, the first 0 (MQTT 5.0 §3.3.2.3.2)',
    connect: (id) => connectV5(id, props()),
    after: publishWith(hex('01 00'), hex('01 01')),
  },
  {
    // the name 00 01 61 read again as the value "a", the value's length 01 03 as a Payload Format Indicator, then 37 x k=v
    name: 'a QoS 1 PUBLISH whose User Property name holds U+0000 [MQTT-1.5.4-2]',
    connect: (id) => connectV5(id, props()),
    after: publishWith(hex('26 0003 000161 0103'), ...Array<Buffer>(37).fill(KV)),
  },
  {
    // the value's bytes read as the User Property n=v, which replaced the first (null) value of n
    name: 'a QoS 1 PUBLISH whose User Property value holds U+0000 [MQTT-1.5.4-2]',
    connect: (id) => connectV5(id, props()),
    after: publishWith(hex('26 0001 6e 0007 26 0001 6e 0001 76')),
  },
]
cases.push(...falsyFirst)

describe('MQTT 5 property values mqtt-packet hands over as arrays or null', () => {
  it.each(cases)('$name: that connection is closed, the node and a QoS 1 client carry on, no exception escapes', async (c) => {
    const id = `v5pv-${Math.random().toString(16).slice(2)}`
    const good = await connect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { clientId: `${id}-good`, protocolVersion: 5 })
    await good.subscribeAsync('v5pv/#', { qos: 1 })
    const got = collect(good)
    const malformed = await clientErrors('malformed_packet')

    const bad = await openRaw('tcp', node.ports.mqtt, 5000, 5)
    const after: string[] = []
    bad.write(c.connect(id))
    if (c.after) {
      expect((await nextPacket(bad, 'connack'))?.reasonCode).toBe(0)
      bad.onPacket = (p) => after.push(p.cmd)
      bad.write(c.after)
    } else bad.onPacket = (p) => after.push(p.cmd)
    expect(await closesWithin(bad, 3000)).toBe(true)
    // closed unanswered: no CONNACK for the CONNECT, no PUBACK for the PUBLISH
    expect(after).toEqual([])
    expect(await clientErrors('malformed_packet')).toBe(malformed + 1)

    // the node outlives the closed connection's session and will timers, and serves the good client
    await good.publishAsync('v5pv/after', 'after', { qos: 1 })
    await waitFor(() => got.some((m) => m.payload === 'after'), 5000, 'the well-behaved client receives')
    expect(got.map((m) => m.topic)).toEqual(['v5pv/after'])
    expect(node.exited()).toBe(false)
    expect(await clientErrors('exception')).toBe(0)
    good.end(true)
  })
})
