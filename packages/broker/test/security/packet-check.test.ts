/**
 * Unit tests of the issue-16 layers: the field checks on parsed packets
 * (limits/packet-check.ts), the containment of an exception to its client
 * (limits/client-faults.ts) and the write path that never throws
 * (listeners/write-batching.ts). The wire-level behaviour is in
 * malformed-packet.test.ts.
 */
import { Writable } from 'node:stream'
import { pino } from 'pino'
import type { Logger } from '../../src/log.js'
import { afterEach, describe, expect, it } from 'vitest'
import { packetViolation, type ParsedPacket } from '../../src/limits/packet-check.js'
import { ClientFaults, isolateHooks } from '../../src/limits/client-faults.js'
import { batchWrites } from '../../src/listeners/write-batching.js'
import { closeSocketPairs, socketPair } from '../helpers/socket-pair.js'
import { HotCounters } from '../../src/ops/metrics.js'

const p = (fields: Partial<ParsedPacket> & { cmd: string; length: number }): ParsedPacket => fields

describe('packetViolation', () => {
  it.each<[string, ParsedPacket, number]>([
    ['publish QoS 1 id 1', p({ cmd: 'publish', length: 8, qos: 1, messageId: 1 }), 8],
    ['publish QoS 2 id 65535 with payload', p({ cmd: 'publish', length: 20, qos: 2, messageId: 65535 }), 8],
    ['publish QoS 0 without id', p({ cmd: 'publish', length: 6, qos: 0 }), 6],
    ['puback id 7', p({ cmd: 'puback', length: 2, messageId: 7 }), 2],
    ['pubrel id 1', p({ cmd: 'pubrel', length: 2, messageId: 1 }), 2],
    ['subscribe', p({ cmd: 'subscribe', length: 9, messageId: 1, subscriptions: [{}] }), 9],
    ['unsubscribe', p({ cmd: 'unsubscribe', length: 8, messageId: 2, unsubscriptions: ['a'] }), 8],
    ['pingreq', p({ cmd: 'pingreq', length: 0 }), 0],
    ['disconnect', p({ cmd: 'disconnect', length: 0 }), 0],
    ['connect with will QoS 2', p({ cmd: 'connect', length: 30, will: { qos: 2 } }), 30],
    ['MQTT 5 puback with a reason code', p({ cmd: 'puback', length: 3, messageId: 1 }), 3],
  ])('accepts a well-formed %s', (_n, packet, used) => {
    expect(packetViolation(packet, used, _n.startsWith('MQTT 5') ? 5 : 4)).toBeUndefined()
  })

  it.each<[string, ParsedPacket, number, RegExp]>([
    ['[MQTT-2.3.1-1] publish QoS 1 with half an id (issue 16)', p({ cmd: 'publish', length: 7, qos: 1, messageId: -1 }), 6, /packet id -1/],
    ['[MQTT-2.3.1-1] publish QoS 2 with id 0', p({ cmd: 'publish', length: 8, qos: 2, messageId: 0 }), 8, /packet id 0/],
    ['publish whose id was read past its end', p({ cmd: 'publish', length: 6, qos: 1, messageId: 49152 }), 8, /run 2 bytes past/],
    ['[MQTT-3.3.1-2] publish QoS 0 with DUP', p({ cmd: 'publish', length: 6, qos: 0, dup: true }), 6, /DUP/],
    ['[MQTT-2.3.1-1] pubcomp without id', p({ cmd: 'pubcomp', length: 0, messageId: -1 }), 0, /packet id -1/],
    ['puback with remaining length 3 (MQTT 3.1.1)', p({ cmd: 'puback', length: 3, messageId: 1 }), 2, /not 2/],
    ['[MQTT-3.8.3-3] subscribe without filters', p({ cmd: 'subscribe', length: 2, messageId: 1, subscriptions: [] }), 2, /MQTT-3.8.3-3/],
    ['[MQTT-3.10.3-2] unsubscribe without filters', p({ cmd: 'unsubscribe', length: 2, messageId: 1, unsubscriptions: [] }), 2, /MQTT-3.10.3-2/],
    ['[MQTT-2.3.1-1] unsubscribe with id 0', p({ cmd: 'unsubscribe', length: 8, messageId: 0, unsubscriptions: ['a'] }), 8, /packet id 0/],
    ['pingreq with a body', p({ cmd: 'pingreq', length: 1 }), 0, /not 0/],
    ['disconnect with a body (MQTT 3.1.1)', p({ cmd: 'disconnect', length: 2 }), 0, /not 0/],
    ['[MQTT-3.1.2-14] connect with will QoS 3', p({ cmd: 'connect', length: 30, will: { qos: 3 } }), 30, /MQTT-3.1.2-14/],
    ['connect with trailing bytes', p({ cmd: 'connect', length: 32 }), 30, /2 bytes after/],
    ['suback from a client', p({ cmd: 'suback', length: 3, messageId: 1 }), 3, /not a packet a client sends/],
  ])('rejects %s', (_n, packet, used, why) => {
    expect(packetViolation(packet, used)).toMatch(why)
  })
})

afterEach(closeSocketPairs)

function memoryLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      cb()
    },
  })
  return { log: pino({ level: 'info' }, sink) as unknown as Logger, lines }
}

describe('ClientFaults', () => {
  it('a throwing hook closes its client (once logged at warn with the client id, counted) and calls back with an error', async () => {
    const [conn] = await socketPair()
    const counters = new HotCounters()
    const { log, lines } = memoryLog()
    const faults = new ClientFaults(counters, log)
    const client = { id: 'c1', conn }
    const hooks = isolateHooks(
      {
        authorizePublish: () => {
          throw new TypeError('boom')
        },
      },
      faults,
    )
    const results: unknown[] = []
    for (let i = 0; i < 2; i++) hooks.authorizePublish!(client as never, {} as never, (err) => results.push(err))
    expect(results).toHaveLength(2)
    expect(results.every((e) => e instanceof Error)).toBe(true)
    expect(conn.destroyed).toBe(true)
    expect(counters.clientErrors.exception).toBe(1)
    await new Promise((r) => setImmediate(r))
    const warns = lines.filter((l) => l.level === 40)
    expect(warns).toHaveLength(1)
    expect(warns[0]).toMatchObject({ client: 'c1', where: 'authorizePublish', err: 'boom' })
  })

  it('a hook that threw after calling back is not called back twice', async () => {
    const [conn] = await socketPair()
    const faults = new ClientFaults(new HotCounters(), memoryLog().log)
    const hooks = isolateHooks(
      {
        published: (_packet, _client, done) => {
          done()
          throw new Error('late')
        },
      },
      faults,
    )
    let calls = 0
    hooks.published!({} as never, { id: 'c2', conn } as never, () => calls++)
    expect(calls).toBe(1)
    expect(conn.destroyed).toBe(true)
  })

  it('authorizeForward that throws forwards nothing and closes only that subscriber', async () => {
    const [a] = await socketPair()
    const [b] = await socketPair()
    const faults = new ClientFaults(new HotCounters(), memoryLog().log)
    const hooks = isolateHooks(
      {
        authorizeForward: (client, packet) => {
          if ((client as unknown as { id: string }).id === 'bad') throw new Error('forward')
          return packet
        },
      },
      faults,
    )
    expect(hooks.authorizeForward!({ id: 'bad', conn: a } as never, { topic: 't' } as never)).toBeNull()
    expect(hooks.authorizeForward!({ id: 'ok', conn: b } as never, { topic: 't' } as never)).toEqual({ topic: 't' })
    expect([a.destroyed, b.destroyed]).toEqual([true, false])
  })
})

describe('batchWrites', () => {
  it('a chunk that is not a Buffer destroys the socket instead of throwing', async () => {
    const [conn] = await socketPair()
    batchWrites(conn)
    expect(conn.write(Buffer.from([0xd0, 0x00]))).toBe(true)
    expect(() => conn.write(undefined as never)).not.toThrow()
    expect(conn.destroyed).toBe(true)
  })
})
