import { generate, type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { FrameReader } from '../src/client/frames.js'

type Got = ['publish', string, string, number, number] | ['ack', number, number] | ['other', string] | ['malformed', string]

function reader(v5: boolean): { r: FrameReader; got: Got[] } {
  const got: Got[] = []
  const r = new FrameReader(v5, {
    publish: (topic, payload, qos, id) => got.push(['publish', topic, payload.toString(), qos, id]),
    ack: (type, id) => got.push(['ack', type, id]),
    other: (packet) => got.push(['other', packet.toString('hex')]),
    malformed: (err) => got.push(['malformed', err.message]),
  })
  return { r, got }
}

const gen = (p: object, v: 4 | 5): Buffer => generate(p as Packet, { protocolVersion: v })

function stream(v: 4 | 5): { bytes: Buffer; want: Got[] } {
  const connack = gen({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, v)
  const big = 'x'.repeat(300) // a remaining length of two bytes
  const parts: Array<[Buffer, Got]> = [
    [connack, ['other', connack.toString('hex')]],
    [gen({ cmd: 'publish', topic: 'a/b', payload: 'hello', qos: 0, dup: false, retain: false }, v), ['publish', 'a/b', 'hello', 0, 0]],
    [gen({ cmd: 'publish', topic: 'ü/t', payload: big, qos: 1, messageId: 300, dup: false, retain: false }, v), ['publish', 'ü/t', big, 1, 300]],
    [gen({ cmd: 'publish', topic: 'q2', payload: 'two', qos: 2, messageId: 65535, dup: true, retain: true }, v), ['publish', 'q2', 'two', 2, 65535]],
    [gen({ cmd: 'puback', messageId: 7 }, v), ['ack', 4, 7]],
    [gen({ cmd: 'pubrec', messageId: 8 }, v), ['ack', 5, 8]],
    [gen({ cmd: 'pubrel', messageId: 9 }, v), ['ack', 6, 9]],
    [gen({ cmd: 'pubcomp', messageId: 10 }, v), ['ack', 7, 10]],
    [gen({ cmd: 'pingresp' }, v), ['other', 'd000']],
  ]
  if (v === 5) {
    const props = { cmd: 'publish', topic: 'p', payload: 'with props', qos: 1, messageId: 2, dup: false, retain: false, properties: { contentType: 'text/plain', userProperties: { k: 'v' }, subscriptionIdentifier: 300 } }
    parts.push([gen(props, 5), ['publish', 'p', 'with props', 1, 2]])
    parts.push([gen({ cmd: 'puback', messageId: 11, reasonCode: 0x10 }, 5), ['ack', 4, 11]])
    parts.push([gen({ cmd: 'pubrec', messageId: 12, reasonCode: 0x87, properties: { reasonString: 'no' } }, 5), ['ack', 5, 12]])
  }
  return { bytes: Buffer.concat(parts.map((p) => p[0])), want: parts.map((p) => p[1]) }
}

describe('bench FrameReader (the load client reads PUBLISH and its acks itself, 3.1.1 and 5 alike)', () => {
  for (const v of [4, 5] as const) {
    it(`MQTT ${v === 5 ? '5' : '3.1.1'}: every packet once, whole or split at any byte, property sections stepped over`, () => {
      const { bytes, want } = stream(v)
      const whole = reader(v === 5)
      whole.r.push(bytes)
      expect(whole.got).toEqual(want)
      for (let cut = 1; cut < bytes.length; cut++) {
        const split = reader(v === 5)
        split.r.push(bytes.subarray(0, cut))
        split.r.push(bytes.subarray(cut))
        expect(split.got, `cut at ${cut}`).toEqual(want)
      }
      const bytewise = reader(v === 5)
      for (let i = 0; i < bytes.length; i++) bytewise.r.push(bytes.subarray(i, i + 1))
      expect(bytewise.got).toEqual(want)
    })
  }

  it('bytes that are not MQTT: malformed once, nothing read after', () => {
    const { r, got } = reader(true)
    r.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])) // remaining length of 5 bytes
    r.push(gen({ cmd: 'puback', messageId: 1 }, 5))
    expect(got).toEqual([['malformed', 'malformed remaining length']])
    const short = reader(false)
    short.r.push(Buffer.from([0x40, 0x01, 0x00])) // a PUBACK without its packet id
    expect(short.got).toEqual([['malformed', 'malformed acknowledgement']])
    const topic = reader(false)
    topic.r.push(Buffer.from([0x30, 0x03, 0x00, 0x05, 0x61])) // a topic longer than the packet
    expect(topic.got).toEqual([['malformed', 'malformed PUBLISH topic']])
  })
})
