/**
 * Contract of seam/mqtt-read-buffer.ts (docs/internals.md, row M14): mqtt-packet's parser reads its
 * bytes through `_list` (a bl BufferList) with a few methods only, and a parser reading through a
 * ReadBuffer emits exactly what one reading through bl does, however the bytes are split.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'

const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet)

/** a 3.1.1 session's packets: CONNECT with will and credentials, SUBSCRIBE, PUBLISH of every QoS (empty, small and 20 KB payloads), acks, PINGREQ */
function session(): Buffer {
  const big = Buffer.alloc(20_000, 7)
  return Buffer.concat([
    gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'rb', clean: true, keepalive: 30, username: 'u', password: Buffer.from('p'), will: { topic: 'w/t', payload: Buffer.from('gone'), qos: 1, retain: false } }),
    gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1 }, { topic: 'b/+', qos: 0 }] }),
    gen({ cmd: 'publish', topic: 'a/0', payload: Buffer.alloc(0), qos: 0 }),
    gen({ cmd: 'publish', topic: 'a/ü', payload: Buffer.from('x'.repeat(64)), qos: 1, messageId: 2 }),
    gen({ cmd: 'puback', messageId: 9 }),
    gen({ cmd: 'publish', topic: 'a/big', payload: big, qos: 2, messageId: 3, retain: true }),
    gen({ cmd: 'pubrel', messageId: 3 }),
    gen({ cmd: 'pingreq' }),
    gen({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['a/#'] }),
    gen({ cmd: 'disconnect' }),
  ])
}

/** what a parser emits for `bytes` fed in chunks of `sizes` (cycled), through bl or a ReadBuffer */
function parse(bytes: Buffer, sizes: number[], readBuffer: boolean): string[] {
  const p = mqttPacket.parser()
  if (readBuffer) seam.readThroughBuffer(p as unknown as { _list: unknown })
  const out: string[] = []
  p.on('packet', (pk) => out.push(JSON.stringify(pk, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))))
  p.on('error', (e) => out.push(`error: ${e.message}`))
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!
    p.parse(bytes.subarray(at, at + n))
    at += n
  }
  return out
}

describe('seam contract: M14 mqtt-packet parser._list read through a ReadBuffer', () => {
  it('M14 mqtt-packet parser._list: a bl made in _resetState, read by parser.js only through length, append, consume, readUInt8/16BE/32BE, slice, toString', () => {
    const src = readFileSync(createRequire(import.meta.url).resolve('mqtt-packet/parser.js'), 'utf8')
    expect(src).toMatch(/this\._list = bl\(\)/)
    const used = new Set([...src.matchAll(/this\._list\.(\w+)/g)].map((m) => m[1]))
    const rb = new seam.ReadBuffer()
    for (const m of used) {
      expect(['append', 'consume', 'length', 'readUInt16BE', 'readUInt32BE', 'readUInt8', 'slice', 'toString'], `parser.js uses _list.${m}`).toContain(m)
      if (m !== 'length') expect(typeof (rb as unknown as Record<string, unknown>)[m!], m).toBe('function')
    }
  })

  it('M14 a parser reading through a ReadBuffer emits what one reading through bl does, whatever the split of the reads', () => {
    const bytes = session()
    const stock = parse(bytes, [bytes.length], false)
    expect(stock).toHaveLength(10)
    let seed = 15
    const random = Array.from({ length: 97 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 1 + (seed % 3000)))
    for (const sizes of [[bytes.length], [1], [2, 5], [7, 64, 1], [16_384], random]) {
      expect(parse(bytes, sizes, true), `chunks of ${sizes.slice(0, 4).join(',')}`).toEqual(stock)
      expect(parse(bytes, sizes, false)).toEqual(stock)
    }
    // a malformed packet after good ones: the same packets, then the same error
    const bad = Buffer.concat([bytes.subarray(0, 200), Buffer.from([0x62, 0x02, 0x00, 0x01])]) // PUBREL with flags 0
    expect(parse(bad, [3], true)).toEqual(parse(bad, [3], false))
  })

  it('M14 at construction: parser.js _resetState sets packet, error, _list, _stateCounter; mqtt-packet\'s parser() without options (Aedes\' call) then makes a parser reading through a ReadBuffer, also after an error; with options mqtt-packet\'s own', () => {
    const src = readFileSync(createRequire(import.meta.url).resolve('mqtt-packet/parser.js'), 'utf8')
    const reset = /_resetState \(\) \{([^}]*)\}/.exec(src)?.[1] ?? ''
    expect([...reset.matchAll(/this\.(\w+) =/g)].map((m) => m[1])).toEqual(['packet', 'error', '_list', '_stateCounter'])
    seam.parsersWithReadBuffer()
    const p = mqttPacket.parser() as unknown as { _list: unknown; parse(b: Buffer): number; on(e: string, f: (x: unknown) => void): void; error: unknown }
    expect(p._list).toBeInstanceOf(seam.ReadBuffer)
    expect((mqttPacket.parser({ protocolVersion: 4 }) as unknown as { _list: unknown })._list).not.toBeInstanceOf(seam.ReadBuffer)
    const got: unknown[] = []
    p.on('packet', (x) => got.push(x))
    p.on('error', () => {})
    // a PUBREL with flags 0 is an error; the next parse starts again from a ReadBuffer
    p.parse(Buffer.from([0x60, 0x02, 0x00, 0x01]))
    expect(p.error).toBeTruthy()
    p.parse(gen({ cmd: 'pingreq' }))
    expect(p._list).toBeInstanceOf(seam.ReadBuffer)
    expect(got).toMatchObject([{ cmd: 'pingreq' }])
  })

  it('M14 ReadBuffer: reads past its bytes throw RangeError, as bl does; slice clamps as bl does', () => {
    const rb = new seam.ReadBuffer().append(Buffer.from([1, 2])).append(Buffer.from([3]))
    expect([rb.length, rb.readUInt8(2), rb.readUInt16BE(1)]).toEqual([3, 3, 0x0203])
    expect(() => rb.readUInt8(3)).toThrow(RangeError)
    // get(i): the byte at i across appended buffers, undefined outside (bl's get; seam M13 reads it)
    expect([rb.get(0), rb.get(2), rb.get(3), rb.get(-1)]).toEqual([1, 3, undefined, undefined])
    expect(() => rb.readUInt16BE(2)).toThrow(RangeError)
    expect([...rb.slice(1, 99)]).toEqual([2, 3])
    expect(rb.slice(5, 9).length).toBe(0)
    rb.consume(2)
    expect([rb.length, rb.readUInt8(0), rb.toString('hex')]).toEqual([1, 3, '03'])
    rb.consume(5)
    expect(rb.length).toBe(0)
  })
})
