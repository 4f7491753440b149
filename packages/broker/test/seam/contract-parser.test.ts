/**
 * Contract of the seam with mqtt-packet (docs/internals.md, rows M*): one test per internal,
 * named after it, on real parsers (mqtt-packet's own, as Aedes makes them) and, for
 * writeToStream, a stock Aedes broker writing to a raw client.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { cliReady, runCli } from '../helpers/node.js'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

interface Parsed {
  packets: Array<Record<string, unknown>>
  errors: string[]
}
/** a parser as Aedes makes one (lib/client.js: mqtt.parser()), with what it emits */
function parser(): { parser: seam.PacketParser; raw: ReturnType<typeof mqttPacket.parser>; out: Parsed } {
  const raw = mqttPacket.parser()
  const out: Parsed = { packets: [], errors: [] }
  raw.on('packet', (p) => void out.packets.push(p as unknown as Record<string, unknown>))
  raw.on('error', (e) => void out.errors.push(e.message))
  return { parser: raw as unknown as seam.PacketParser, raw, out }
}
const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet)
const publish = (topic: string | Buffer, payload = 'xyz', qos = 1): Buffer => {
  const b = gen({ cmd: 'publish', topic: 'T'.repeat(Buffer.byteLength(topic)), payload, qos, messageId: 7 })
  const t = Buffer.isBuffer(topic) ? topic : Buffer.from(topic)
  t.copy(b, 4) // header, remaining length, topic length (2): the topic bytes as given
  return b
}

describe('seam contract: mqtt-packet', () => {
  it('M1 mqtt-packet writeToStream: Aedes writes every packet through it, read from the module at call time', async () => {
    const s = await stockBroker()
    const seen: string[] = []
    s.broker.on('client', (c) => {
      seam.onWrite(c.conn, (p) => void seen.push(p.cmd))
      seam.holdWrites(c.conn, (p) => p.cmd === 'pingresp' && (held.push(p), true))
    })
    const held: seam.OutPacket[] = []
    const { raw } = await rawClient(s.port, { clientId: 'm1' })
    raw.send({ cmd: 'pingreq' })
    await eventually(() => held[0], 3000, 'the PINGRESP held')
    expect(raw.packets.some((p) => p.cmd === 'pingresp'), 'held, not written').toBe(false)
    seam.writePacket(held[0]!, (s.clients[0] as unknown as { conn: NodeJS.WritableStream }).conn)
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'))
    expect(seen).toContain('pingresp')
    const w = mqttPacket.writeToStream as unknown as { cacheNumbers: boolean }
    expect(typeof w.cacheNumbers, 'writeToStream.cacheNumbers').toBe('boolean')
  })

  /** the parser routed through hooks, as seam/client-hooks.ts does for each Client */
  const hooked = (set: (h: seam.ParserHooks<undefined>) => void): ReturnType<typeof parser> => {
    const x = parser()
    const hooks = new seam.ParserHooks<undefined>()
    set(hooks)
    seam.hookParser(x.parser, hooks)
    return x
  }

  it('M2 mqtt-packet parser._parseLength: the remaining length, decoded before the body is buffered', () => {
    const { raw, out } = hooked((h) => (h.maxPacketSize = 100))
    // the fixed header of a 1 MiB PUBLISH and nothing of its body
    raw.parse(Buffer.from([0x30, 0x80, 0x80, 0x40]))
    expect(out.errors).toEqual(['packet of 1048576 bytes is larger than max_packet_size 100'])
  })

  it('M3 mqtt-packet parser._parseString / _parseNum / _pos / _list: the string fields of a packet', () => {
    const ok = hooked((h) => (h.strictUtf8 = true))
    ok.raw.parse(Buffer.concat([publish('a/é'), publish('b/\u{1F600}', 'after')]))
    expect(ok.out.packets.map((p) => [p.topic, String(p.payload)])).toEqual([['a/é', 'xyz'], ['b/\u{1F600}', 'after']])
    const bad = hooked((h) => (h.strictUtf8 = true))
    bad.raw.parse(publish(Buffer.from([0x61, 0xc3, 0x28])))
    expect(bad.out.packets).toEqual([])
    expect(bad.out.errors.length).toBe(1)
  })

  it('M4 mqtt-packet parser._newPacket / packet / settings: each packet before it is emitted, with the bytes its fields used', () => {
    const seen: Array<[string | null, number, number, number | undefined]> = []
    const { raw, out } = hooked((h) => (h.check = (packet, used, v) => (seen.push([packet.cmd, packet.length, used, v]), packet.messageId === 8 ? 'no 8' : undefined)))
    raw.parse(Buffer.concat([gen({ cmd: 'puback', messageId: 7 }), gen({ cmd: 'puback', messageId: 8 })]))
    expect(seen).toEqual([['puback', 2, 2, undefined], ['puback', 2, 2, undefined]])
    expect(out.packets.map((x) => x.messageId)).toEqual([7])
    expect(out.errors).toEqual(['malformed packet: no 8'])
  })

  it('M5 mqtt-packet parser._emitError: every parse error goes through it', () => {
    const seen: string[] = []
    const { raw, out } = hooked((h) => h.parseError.push((err) => (seen.push(err.message), true)))
    raw.parse(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))
    expect(seen.length).toBe(1)
    expect(out.errors, 'intercepted: not emitted').toEqual([])
  })

  it('M6 mqtt-packet parser.emit: the packet event (and the error event), in the order of the hooks', () => {
    const order: string[] = []
    const errors: string[] = []
    const { raw, out } = hooked((h) => {
      h.packet.push((x: { cmd: string; messageId?: number }) => (order.push(`a${x.messageId}`), x.messageId === 1 ? false : x.messageId === 2 ? new Error('two') : undefined))
      h.packet.push({ before: () => (order.push('before'), true), after: () => void order.push('after') })
      h.errorEvent.push((err) => void errors.push(err.message))
    })
    raw.on('packet', (x: { messageId?: number }) => void order.push(`aedes${x.messageId}`))
    raw.parse(Buffer.concat([1, 2, 3].map((messageId) => gen({ cmd: 'puback', messageId }))))
    expect(out.packets.map((x) => x.messageId)).toEqual([3])
    expect(out.errors).toEqual(['two'])
    expect(errors).toEqual(['two'])
    expect(order).toEqual(['a1', 'a2', 'a3', 'before', 'aedes3', 'after'])
  })

  it('M6 a hook given seeOnly(cmds) is called for packets of those types only, in its place among the others (issue 15)', () => {
    const order: string[] = []
    const { raw, out } = hooked((h) => {
      const acks = (x: { cmd: string; messageId?: number }): undefined => void order.push(`acks:${x.cmd}${x.messageId}`)
      const around = { before: (x: { cmd: string }) => (order.push(`before:${x.cmd}`), true), after: () => void order.push('after') }
      h.packet.push((x: { cmd: string }) => void order.push(`all:${x.cmd}`))
      h.packet.push(acks)
      h.packet.push(around)
      h.packet.push((x: { cmd: string; messageId?: number }) => (order.push(`last:${x.cmd}`), x.messageId === 2 ? false : undefined))
      h.seeOnly(acks, ['puback', 'pubcomp'])
      h.seeOnly(around, ['pingreq'])
    })
    raw.on('packet', (x: { cmd: string }) => void order.push(`aedes:${x.cmd}`))
    raw.parse(Buffer.concat([gen({ cmd: 'puback', messageId: 1 }), gen({ cmd: 'pingreq' }), gen({ cmd: 'pubcomp', messageId: 2 }), gen({ cmd: 'pubrec', messageId: 3 })]))
    expect(order).toEqual([
      'all:puback', 'acks:puback1', 'last:puback', 'aedes:puback',
      'all:pingreq', 'before:pingreq', 'last:pingreq', 'aedes:pingreq', 'after',
      'all:pubcomp', 'acks:pubcomp2', 'last:pubcomp',
      'all:pubrec', 'last:pubrec', 'aedes:pubrec',
    ])
    expect(out.packets.map((x) => x.cmd)).toEqual(['puback', 'pingreq', 'pubrec'])
  })

  it('M7 mqtt-packet parser.error: set, the parse loop stops', () => {
    const { parser: p, raw, out } = parser()
    raw.on('packet', () => seam.stopParsing(p, new Error('stop')))
    raw.parse(Buffer.concat([1, 2].map((messageId) => gen({ cmd: 'puback', messageId }))))
    expect(out.packets.map((x) => x.messageId)).toEqual([1])
  })

  it('M8 mqtt-packet parser.parse: emits the packets of a buffer synchronously (a throw in a handler reaches parseFault)', () => {
    const faults: string[] = []
    const { raw, out } = hooked((h) => (h.parseFault = (err) => void faults.push((err as Error).message)))
    raw.on('packet', () => {
      throw new Error('in the handler')
    })
    expect(raw.parse(gen({ cmd: 'pingreq' }))).toBe(0)
    expect(faults).toEqual(['in the handler'])
    expect(out.errors).toEqual([])
  })

  it('M9 mqtt-packet error text for an unsupported protocol level: "Invalid protocol version"', () => {
    const { raw, out } = parser()
    const connect = gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'x' })
    connect[8] = 9 // protocol level 9
    raw.parse(connect)
    expect(out.errors.length).toBe(1)
    expect(seam.isUnsupportedProtocolLevel(new Error(out.errors[0]))).toBe(true)
  })

  it("M10 mqtt-packet's debug loggers: parser.js and writeToStream.js make theirs at load, require('debug')('mqtt-packet:parser' / ':writeToStream'); the seam hands them no-ops unless DEBUG enables them", async () => {
    // a fresh process: the seam first, then mqtt-packet, as a node loads them (built dist)
    const seamFile = new URL('../../dist/seam/mqtt-packet-debug.js', import.meta.url).href
    const script = `
      const seam = await import(${JSON.stringify(seamFile)})
      const mp = (await import('node:module')).createRequire(new URL(${JSON.stringify(seamFile)}))('mqtt-packet')
      const parser = mp.parser()
      let parsed = 0
      parser.on('packet', () => parsed++)
      parser.parse(mp.generate({ cmd: 'publish', topic: 'm10/t', payload: 'x', qos: 1, messageId: 1 }))
      console.log(JSON.stringify({ ...seam.mqttPacketDebug(), parsed }))`
    const run = (env: Record<string, string>) =>
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, DEBUG: '', ...env } })
    const off = await run({})
    expect(JSON.parse(off.stdout)).toEqual({ state: 'off', silenced: ['mqtt-packet:parser', 'mqtt-packet:writeToStream'], parsed: 1 })
    expect(off.stderr).toBe('')
    const on = await run({ DEBUG: 'mqtt-packet:*' })
    expect(JSON.parse(on.stdout)).toMatchObject({ state: 'on (DEBUG)', silenced: [], parsed: 1 })
    expect(on.stderr).toContain('mqtt-packet:parser')
    // a node loads mqtt-packet through the seam (main.ts imports it first)
    const node = runCli(['start', '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--log-level', 'info'], { DEBUG: '' })
    try {
      await cliReady(node)
      expect(node.stdout.join('')).toContain('"mqtt_packet_debug":"off"')
    } finally {
      node.child.kill('SIGTERM')
      await node.exit
    }
  })
})
