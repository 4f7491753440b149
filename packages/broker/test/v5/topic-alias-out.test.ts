/**
 * Topic aliases on what Culex sends (MQTT 5 §3.3.2.3.4, opt-in `topic_alias_out_max`; the
 * conformance suite has the statements in three modes: conformance-v5/topic-alias-out.test.ts): raw
 * frames show the first PUBLISH of a topic with the topic and a new alias, later ones with an
 * empty topic and the alias, never more aliases than the client's Topic Alias Maximum; a client
 * without one, a 3.1.1 client, and every client of a node without the key get whole topics; MQTT.js
 * v5 resolves the aliases to the right topics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { ConfigError, loadConfig } from '../../src/main.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { closeClients, collect, connect, startTestNode } from '../helpers/node.js'

let on: CulexNode
let off: CulexNode
beforeAll(async () => {
  ;[on, off] = await Promise.all([startTestNode({ topic_alias_out_max: 8 }), startTestNode()])
})
afterAll(async () => {
  destroyAll()
  await closeClients()
  await Promise.all([on?.close({ drain: false }), off?.close({ drain: false })])
})

const SENT = ['ta/a', 'ta/a', 'ta/b', 'ta/c', 'ta/a', 'ta/c', 'ta/b']

/** a raw subscriber to ta/# (CONNECT properties `props`), the topics of SENT published to it, and what it got: [topic, alias] per PUBLISH */
async function received(node: CulexNode, props: Record<string, unknown>, version: 4 | 5 = 5): Promise<Array<[string, number | undefined]>> {
  const sub = await Raw.open(node.ports.mqtt, version)
  await sub.connect({ clientId: '', properties: version === 5 ? props : undefined })
  await sub.subscribe('ta/#', 0)
  const pub = await Raw.open(node.ports.mqtt, 5)
  await pub.connect()
  await sub.subscribe('mark', 0, 2)
  for (const t of SENT) pub.send({ cmd: 'publish', topic: t, payload: t, qos: 0 })
  pub.send({ cmd: 'publish', topic: 'mark', payload: '', qos: 0 })
  const got = (await sub.until('mark')).filter((p) => p.cmd === 'publish')
  // each message carries its topic as payload: every one arrived, in order
  expect(got.map((p) => String(p.payload))).toEqual(SENT)
  return got.map((p) => [p.topic as string, (p.properties as { topicAlias?: number } | undefined)?.topicAlias])
}

describe('topic_alias_out_max 8', () => {
  it('[MQTT-3.1.2-26] [MQTT-3.3.2-11] [MQTT-3.3.2-8] a client with Topic Alias Maximum 2: aliases 1 and 2, the topic sent with each alias once, then only the alias; a third topic goes out whole', async () => {
    expect(await received(on, { topicAliasMaximum: 2 })).toEqual([
      ['ta/a', 1],
      ['', 1],
      ['ta/b', 2],
      ['ta/c', undefined],
      ['', 1],
      ['ta/c', undefined],
      ['', 2],
    ])
  })

  it('[MQTT-3.1.2-27] a client without a Topic Alias Maximum, or of MQTT 3.1.1, gets every topic whole and no alias', async () => {
    const whole = SENT.map((t) => [t, undefined])
    expect(await received(on, {})).toEqual(whole)
    expect(await received(on, { topicAliasMaximum: 0 })).toEqual(whole)
    expect(await received(on, {}, 4)).toEqual(whole)
  })

  it('MQTT.js v5 with a Topic Alias Maximum of 3 resolves the aliases: every message on its topic, in order', async () => {
    const sub = await connect(`mqtt://127.0.0.1:${on.ports.mqtt}`, { protocolVersion: 5, properties: { topicAliasMaximum: 3 } })
    const got = collect(sub)
    let aliased = 0
    sub.on('packetreceive', (p) => {
      if (p.cmd === 'publish' && p.properties?.topicAlias !== undefined) aliased++
    })
    await sub.subscribeAsync('ta/#', { qos: 1 })
    const pub = await connect(`mqtt://127.0.0.1:${on.ports.mqtt}`, { protocolVersion: 5 })
    const topics = Array.from({ length: 40 }, (_, i) => `ta/${'abcde'[i % 5]}`)
    for (const t of topics) await pub.publishAsync(t, t, { qos: 1 })
    await expect.poll(() => got.length, { timeout: 5000 }).toBe(topics.length)
    expect(got.map((g) => [g.topic, g.payload])).toEqual(topics.map((t) => [t, t]))
    // ta/a, ta/b, ta/c got aliases 1-3 (8 messages each), ta/d and ta/e went out whole
    expect(aliased).toBe(24)
  })
})

it('a node without topic_alias_out_max sends whole topics to a client with a Topic Alias Maximum', async () => {
  expect(await received(off, { topicAliasMaximum: 10 })).toEqual(SENT.map((t) => [t, undefined]))
})

it('topic_alias_out_max is validated: a negative value or one over 65535 stops the start naming the key', () => {
  for (const v of ['-1', '65536', 'many']) {
    expect(() => loadConfig({ flags: { topic_alias_out_max: v } })).toThrow(ConfigError)
    expect(() => loadConfig({ flags: { topic_alias_out_max: v } })).toThrow(/topic_alias_out_max/)
  }
  expect(loadConfig({}).topic_alias_out_max).toBe(0)
})
