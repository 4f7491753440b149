/**
 * Culex's own MessagePack (cluster/msgpack.ts, msgpackr) against msgpack-lite, which wrote every
 * entry in Redis before: what msgpack-lite wrote is read the same, what is written now a node of
 * the previous release (msgpack-lite) reads, and MQTT 5 properties come back byte-exact. Pure.
 */
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { decode, decodePacket, encode, encodePacket } from '../../src/cluster/msgpack.js'
import { decodeRecord, encodeRecord, type ShareRecord } from '../../src/shared/store.js'
import { StoredPacket } from '../../src/seam/index.js'

const lite = createRequire(import.meta.url)('msgpack-lite') as typeof import('msgpack-lite')

const CORRELATION = Buffer.from([0x00, 0xff, 0x00, 0x7f, 0x80])

function userProps(): Record<string, unknown> {
  const up = Object.create(null) as Record<string, unknown>
  up['region'] = ['eu-west ✓', 'ünï']
  up['constructor'] = 'x'
  up['__proto__'] = 'kept'
  return up
}

/** a queued MQTT 5 message as the session queue stores it (aedes-packet Packet) */
function queued(): Record<string, unknown> {
  return {
    ...new StoredPacket({
      cmd: 'publish', brokerId: 'node-a', brokerCounter: 2 ** 33 + 1, topic: 'v5/q', payload: Buffer.from([0, 1, 255]), qos: 1, retain: false, dup: false, clientId: 'p',
      properties: { payloadFormatIndicator: false, contentType: 'text/plain; charset=utf-8', responseTopic: 'r/1', correlationData: CORRELATION, userProperties: userProps(), messageExpiryInterval: 30 },
      messageExpiry: 1_796_000_123_456,
    }),
  }
}

describe('cluster MessagePack (msgpackr) and the entries msgpack-lite wrote', () => {
  it('reads a session queue body, a will and a subscription written by msgpack-lite (the previous release)', () => {
    const body = { ...new StoredPacket({ cmd: 'publish', brokerId: 'old', brokerCounter: 7, topic: 'a/b', payload: Buffer.from('hello'), qos: 1, retain: false, dup: false }) }
    const out = decodePacket(lite.encode(body))
    expect(out).toEqual(lite.decode(lite.encode(body)))
    expect(Buffer.isBuffer((out as { payload: Buffer }).payload)).toBe(true)
    const will = { topic: 'w', payload: Buffer.from([0, 255]), qos: 1, retain: true, clientId: 'c', brokerId: 'n' }
    expect(decodePacket(lite.encode(will))).toEqual(will)
    const sub = { topic: 'a/#', qos: 1, rh: 0, rap: false, nl: false }
    expect(decode(lite.encode(sub))).toEqual(sub)
    const rec: ShareRecord = { g: 'g|a/#', t: 'a/b', p: Buffer.from('x'), q: 1, b: 'n', c: 3, pub: 'p' }
    expect(decodeRecord(lite.encode(rec))).toEqual(rec)
  })

  it('an MQTT 5 entry msgpack-lite wrote (aedes 2 on the previous release) keeps its properties, correlation data as bytes', () => {
    const q = queued()
    const out = decodePacket<{ properties: Record<string, unknown> }>(lite.encode(q))
    expect(Buffer.isBuffer(out.properties.correlationData)).toBe(true)
    expect((out.properties.correlationData as Buffer).equals(CORRELATION)).toBe(true)
    // the map form of those entries: a `__proto__` name comes back renamed (msgpackr's guard against
    // prototype pollution); what is written now keeps it (next test)
    expect(out.properties.userProperties).toEqual({ region: ['eu-west ✓', 'ünï'], constructor: 'x', __proto_: 'kept' })
  })

  it('[MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] an MQTT 5 queue body and a share record round-trip byte-exact: correlation data, user properties in order, a `__proto__` name, the expiry', () => {
    const q = queued()
    const out = decodePacket<Record<string, unknown> & { properties: Record<string, unknown> }>(encodePacket(q))
    expect(out).toEqual({ ...q, messageId: null }) // undefined is written as nil, as msgpack-lite did
    expect(Buffer.isBuffer(out.properties.correlationData)).toBe(true)
    const up = out.properties.userProperties as Record<string, unknown>
    expect(Object.keys(up)).toEqual(['region', 'constructor', '__proto__'])
    expect(up['__proto__']).toBe('kept')
    expect(Object.getPrototypeOf(up)).toBe(null) // as mqtt-packet makes it
    // the original is not changed by encoding it
    expect(Object.keys(q.properties as object)).toContain('userProperties')
    expect(Array.isArray((q.properties as Record<string, unknown>).userProperties)).toBe(false)

    const rec: ShareRecord = { g: 'g|v5/#', t: 'v5/q', p: Buffer.from([0]), q: 1, b: 'n', c: 1, x: { correlationData: CORRELATION, userProperties: userProps() }, e: 1_796_000_000_000 }
    expect(decodeRecord(encodeRecord(rec))).toEqual(rec)
  })

  it('a v5 will keeps its properties in Redis: will delay interval, message expiry, user properties, correlation data (cluster/wills.ts publishes it from there)', () => {
    const will = { topic: 'w/5', payload: Buffer.from([0xff]), qos: 1, retain: false, clientId: 'c', brokerId: 'n', properties: { willDelayInterval: 30, messageExpiryInterval: 600, payloadFormatIndicator: false, contentType: 'x/y', responseTopic: 'r', correlationData: CORRELATION, userProperties: userProps() } }
    const out = decodePacket(encodePacket(will))
    expect(out).toEqual(will)
    expect(Object.keys((out as typeof will).properties.userProperties)).toEqual(['region', 'constructor', '__proto__'])
  })

  it('a property Aedes stripped (undefined: a resolved Topic Alias) stays absent, never null, which mqtt-packet cannot write [MQTT-3.3.2-10]', () => {
    const p = { topic: 'a', qos: 1, properties: { topicAlias: undefined, contentType: 'x' } }
    expect(decodePacket(encodePacket(p))).toEqual({ topic: 'a', qos: 1, properties: { contentType: 'x' } })
    expect(p.properties).toHaveProperty('topicAlias') // the original is not changed
    // written as nil before (an older node, a queued entry): dropped when read
    expect(decodePacket(lite.encode({ topic: 'a', properties: { topicAlias: null, contentType: 'x' } }))).toEqual({ topic: 'a', properties: { contentType: 'x' } })
    const rec: ShareRecord = { g: 'g', t: 't', p: Buffer.from('x'), q: 1, b: 'n', c: 3, x: { topicAlias: undefined } }
    expect(decodeRecord(encodeRecord(rec)).x).toEqual({})
  })

  it('writes what msgpack-lite reads (a node of the previous release during a rolling upgrade): maps, bin, nil for undefined', () => {
    const body = { ...new StoredPacket({ cmd: 'publish', brokerId: 'new', brokerCounter: 2 ** 40, topic: 'a/ü', payload: Buffer.alloc(70_000, 1), qos: 2, retain: false, dup: false }) }
    const old = lite.decode(encodePacket(body)) as Record<string, unknown>
    expect(old).toEqual(lite.decode(lite.encode(body)))
    expect(Buffer.isBuffer(old.payload)).toBe(true)
    expect(old.messageId).toBe(null) // undefined, as msgpack-lite itself wrote it
    const rec: ShareRecord = { g: 'g', t: 't', p: Buffer.from('x'), q: 1, b: 'n', c: 3 }
    expect(lite.decode(encodeRecord(rec))).toEqual(rec)
    expect(lite.decode(encode({ topic: 'a', qos: 1 }))).toEqual({ topic: 'a', qos: 1 })
  })
})
