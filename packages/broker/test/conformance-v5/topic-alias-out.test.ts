/**
 * MQTT 5.0 §3.3.2.3.4, Topic Aliases the Server sends, in every mode with the opt-in
 * `topic_alias_out_max` set (4): the subscriber on node 1, the publisher on node 0 (the other node
 * in two-node mode). Without the key Culex sends none (ch3-publish.test.ts, [MQTT-3.1.2-27]).
 */
import { expect } from 'vitest'
import { forEachMode5, test } from './modes.js'

forEachMode5(
  (m) => {
    const it = test(m)

    it('[MQTT-3.1.2-26] [MQTT-3.3.2-8] [MQTT-3.3.2-11] with topic_alias_out_max set, a client with Topic Alias Maximum 2 gets only aliases 1 and 2, each sent with its topic before it is used alone', async () => {
      const base = `tao/${m.id('t')}`
      const s = await m.raw(1)
      await s.connect({ clientId: m.id('sub'), properties: { topicAliasMaximum: 2 } })
      await s.subscribe(`${base}/#`, 1)
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      const sent = ['a', 'b', 'c', 'a', 'b', 'c', 'd', 'a'].map((x) => `${base}/${x}`)
      for (const [i, t] of sent.entries()) await p.publish(t, t, 1, false, i + 1)
      const known = new Map<number, string>()
      const got: string[] = []
      for (let i = 0; i < sent.length; i++) {
        const pub = await s.expect('publish', 5000)
        s.send({ cmd: 'puback', messageId: pub.messageId })
        const alias = (pub.properties as { topicAlias?: number } | undefined)?.topicAlias
        if (alias !== undefined) {
          expect(alias).toBeGreaterThanOrEqual(1)
          expect(alias).toBeLessThanOrEqual(2)
          if (pub.topic !== '') known.set(alias, pub.topic as string)
        }
        const topic = pub.topic === '' ? known.get(alias!) : (pub.topic as string)
        // each message carries its topic as payload: the alias stands for it
        expect([topic, String(pub.payload)]).toEqual([String(pub.payload), String(pub.payload)])
        got.push(topic!)
      }
      expect(got).toEqual(sent)
      expect(known.size).toBe(2)
    })

    it('[MQTT-3.1.2-27] with topic_alias_out_max set, a client that sent no Topic Alias Maximum still gets no topic alias', async () => {
      const topic = `tao0/${m.id('t')}`
      const s = await m.raw(1)
      await s.connect({ clientId: m.id('sub') })
      await s.subscribe(topic, 0)
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      for (let i = 0; i < 3; i++) await p.publish(topic, String(i), 0)
      for (let i = 0; i < 3; i++) {
        const pub = await s.expect('publish', 5000)
        expect([pub.topic, (pub.properties as { topicAlias?: number } | undefined)?.topicAlias]).toEqual([topic, undefined])
      }
    })
  },
  { topic_alias_out_max: 4 },
)
