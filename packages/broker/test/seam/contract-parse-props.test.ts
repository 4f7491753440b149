/**
 * Contract of seam/mqtt-parse-props.ts (docs/internals.md row M13): mqtt-packet 9's parser
 * `_parseProperties` and what the strict copy reads (`_parseVarByteNum`, `_parseByte`,
 * `_parseByType`, `_pos`, `_emitError`, constants.js `propertiesCodes` / `propertiesTypes`), on
 * real parsers as Aedes makes them. A well-formed section parses exactly as mqtt-packet's own
 * does; the two differences are the ones the seam is there for.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { strictParseProperties } from '../../src/seam/mqtt-parse-props.js'

const require = createRequire(import.meta.url)

interface Out {
  packets: Array<Record<string, unknown>>
  errors: string[]
}
/** parse `bytes` with a v5 parser as Aedes makes one (strict: the seam's copy and strict strings, as Culex hooks it) */
function parse(bytes: Buffer, strict: boolean): Out {
  const raw = mqttPacket.parser({ protocolVersion: 5 })
  const out: Out = { packets: [], errors: [] }
  raw.on('packet', (p) => void out.packets.push(p as unknown as Record<string, unknown>))
  raw.on('error', (e) => void out.errors.push(e.message))
  if (strict) {
    const hooks = new seam.ParserHooks<undefined>()
    hooks.strictUtf8 = true
    seam.hookParser(raw as unknown as seam.PacketParser, hooks)
    ;(raw as unknown as { _parseProperties: unknown })._parseProperties = strictParseProperties
  }
  raw.parse(bytes)
  return out
}
const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex')
/** a QoS 0 v5 PUBLISH on "t" whose property section is `props` (< 128 bytes), payload "x" */
const publish = (props: string): Buffer => {
  const p = hex(props)
  const body = Buffer.concat([hex('0001 74'), Buffer.from([p.length]), p, Buffer.from('x')])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('seam contract: mqtt-packet _parseProperties', () => {
  it('M13 the parser\'s _parseProperties and what the copy reads exist; the constants tables name the properties', () => {
    const proto = Object.getPrototypeOf(mqttPacket.parser()) as Record<string, unknown>
    for (const m of ['_parseProperties', '_parseVarByteNum', '_parseByte', '_parseByType', '_emitError']) expect(typeof proto[m], m).toBe('function')
    const constants = require('mqtt-packet/constants.js') as { propertiesCodes: Record<number, string>; propertiesTypes: Record<string, string> }
    expect([constants.propertiesCodes[0x01], constants.propertiesCodes[0x26], constants.propertiesTypes.userProperties]).toEqual(['payloadFormatIndicator', 'userProperties', 'pair'])
    // the parser's `_list` (bl): `length` and `get(i)`, the byte at i across its buffers
    const list = (mqttPacket.parser() as unknown as { _list: { append(b: Buffer): void; get(i: number): unknown; length: number } })._list
    list.append(Buffer.from([1, 0]))
    list.append(Buffer.from([3]))
    expect([list.length, list.get(0), list.get(1), list.get(2)]).toEqual([3, 1, 0, 3])
  })

  it('M13 a well-formed section (every PUBLISH property, repeated User Properties) parses as mqtt-packet\'s own parses it', () => {
    const properties = {
      payloadFormatIndicator: true,
      messageExpiryInterval: 60,
      topicAlias: 3,
      responseTopic: 'r/t',
      correlationData: Buffer.from([1, 2, 3]),
      userProperties: { a: ['1', '2'], b: 'three' },
      subscriptionIdentifier: 9,
      contentType: 'text/plain',
    }
    const bytes = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: 'x', qos: 1, messageId: 5, dup: false, retain: false, properties } as unknown as mqttPacket.Packet, { protocolVersion: 5 })
    const stock = parse(bytes, false)
    const strict = parse(bytes, true)
    expect(strict.errors).toEqual([])
    expect(strict.packets).toEqual(stock.packets)
    expect(strict.packets[0]!.properties).toEqual(properties)
  })

  it('M13 mqtt-packet drops a first copy that is falsy (0, false, \'\'); the copy keeps both, in order', () => {
    const twice = publish('01 00 01 01  02 00000000 02 0000003c  26 0001 6b 0000 26 0001 6b 0001 76')
    expect(parse(twice, false).packets[0]!.properties).toEqual({ payloadFormatIndicator: true, messageExpiryInterval: 60, userProperties: { k: 'v' } })
    expect(parse(twice, true).packets[0]!.properties).toEqual({ payloadFormatIndicator: [false, true], messageExpiryInterval: [0, 60], userProperties: { k: ['', 'v'] } })
  })

  it('M13 a User Property name that is not a well-formed string: mqtt-packet reads on from the wrong place (here the value\'s bytes taken for a property id); the copy stops with the parser\'s error', () => {
    // the name 00 01 61 holds U+0000; read again as a string it is "a"
    const bytes = publish('26 0003 000161 0001 76')
    const strictStrings = mqttPacket.parser({ protocolVersion: 5 })
    const hooks = new seam.ParserHooks<undefined>()
    hooks.strictUtf8 = true
    seam.hookParser(strictStrings as unknown as seam.PacketParser, hooks)
    const stock: Out = { packets: [], errors: [] }
    strictStrings.on('packet', (p) => void stock.packets.push(p as unknown as Record<string, unknown>))
    strictStrings.on('error', (e) => void stock.errors.push(e.message))
    strictStrings.parse(bytes)
    // "a" as the value of "null", then the value's bytes 00 01 76 as a property: id 0
    expect(stock.errors).toEqual(['Cannot parse property code type'])
    const strict = parse(bytes, true)
    expect(strict.packets).toEqual([])
    expect(strict.errors).toEqual(['malformed packet: a User Property name or value that is not well-formed UTF-8 or holds U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]'])
  })
  it('M13 every caller of _parseProperties in parser.js keeps the section only when it holds a property, so the copy\'s one shared empty result (Property Length 0) is never kept by a packet', () => {
    const source = readFileSync(require.resolve('mqtt-packet/parser.js'), 'utf8')
    const calls = [...source.matchAll(/const (\w+) = this\._parseProperties\(\)\n\s*if \(Object\.getOwnPropertyNames\(\1\)\.length\) \{/g)]
    // the definition aside, each call is followed by that test (10 callers in mqtt-packet 9)
    expect(calls.length).toBeGreaterThan(0)
    expect(calls.length).toBe(source.split('this._parseProperties()').length - 1)
    // a PUBLISH and a SUBSCRIBE with empty sections, twice: no properties on either, no error
    const subscribe = hex('82 07 0001 00 0001 74 01')
    const out = parse(Buffer.concat([publish(''), subscribe, publish(''), subscribe]), true)
    expect(out.errors).toEqual([])
    expect(out.packets.map((p) => [p.cmd, 'properties' in p])).toEqual([['publish', false], ['subscribe', false], ['publish', false], ['subscribe', false]])
  })

  it('M13 empty and non-empty sections fed one byte at a time (the Property Length in a buffer of its own) parse as mqtt-packet\'s own parses them', () => {
    const props = { contentType: 'c', userProperties: { k: 'v' } }
    const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion: 5 })
    const bytes = Buffer.concat([
      publish(''),
      gen({ cmd: 'publish', topic: 't/1', payload: 'p', qos: 1, messageId: 7, dup: false, retain: false, properties: props }),
      gen({ cmd: 'puback', messageId: 9, reasonCode: 0x10 }),
      gen({ cmd: 'puback', messageId: 10, reasonCode: 0x10, properties: { reasonString: 'r' } }),
      publish(''),
    ])
    const feed = (strict: boolean, readBuffer = false): Out => {
      const raw = mqttPacket.parser({ protocolVersion: 5 })
      // M14: the parser's bytes in a ReadBuffer (as on every connection), whose get() M13 reads
      if (readBuffer) seam.readThroughBuffer(raw as unknown as { _list: unknown })
      const out: Out = { packets: [], errors: [] }
      raw.on('packet', (p) => void out.packets.push({ ...(p as unknown as Record<string, unknown>) }))
      raw.on('error', (e) => void out.errors.push(e.message))
      if (strict) (raw as unknown as { _parseProperties: unknown })._parseProperties = strictParseProperties
      for (let i = 0; i < bytes.length; i++) raw.parse(bytes.subarray(i, i + 1))
      return out
    }
    const stock = feed(false)
    const strict = feed(true)
    expect(strict.errors).toEqual([])
    expect(strict.packets.length).toBe(5)
    expect(strict.packets).toEqual(stock.packets)
    expect(strict).toEqual(parse(bytes, true))
    expect(feed(true, true)).toEqual(strict)
  })
})
