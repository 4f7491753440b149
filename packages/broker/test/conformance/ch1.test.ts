/** MQTT 3.1.1 chapter 1.5.3 (UTF-8 encoded strings), byte level, in every mode. */
import { expect, it } from 'vitest'
import { pkt, str } from './raw.js'
import { forEachMode } from './modes.js'

forEachMode((m) => {
  for (const [name, bytes] of [
    ['a lone continuation byte', [0x61, 0x80]],
    ['an overlong encoding of "/"', [0x61, 0xc0, 0xaf]],
    ['an encoded UTF-16 surrogate (U+D800)', [0x61, 0xed, 0xa0, 0x80]],
  ] as const) {
    it(`[MQTT-1.5.3-1] a topic name with ${name} (ill-formed UTF-8) closes the connection`, async () => {
      const c = await m.raw()
      await c.connect({ clientId: m.id('utf') })
      c.send(pkt(0x32, str(Buffer.from(bytes)), Buffer.from([0, 1]), Buffer.from('x')))
      await c.closedBy()
      expect(c.unread()).toEqual([])
    })
  }

  it('[MQTT-1.5.3-2] [MQTT-4.7.3-2] a topic name holding U+0000 closes the connection (the server may; Culex does)', async () => {
    const c = await m.raw()
    await c.connect({ clientId: m.id('nul') })
    c.send(pkt(0x32, str(Buffer.from([0x61, 0x00, 0x62])), Buffer.from([0, 1]), Buffer.from('x')))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  it('[MQTT-1.5.3-3] a leading 0xEF 0xBB 0xBF (U+FEFF) is neither skipped nor stripped: it is part of the topic', async () => {
    const base = m.id('bom')
    const bom = '\uFEFF'
    const withBom = await m.raw(1)
    await withBom.connect({ clientId: m.id('with') })
    await withBom.subscribe(`${bom}${base}`, 0)
    const without = await m.raw(1)
    await without.connect({ clientId: m.id('without') })
    await without.subscribe(base, 0)
    const p = await m.raw(0)
    await p.connect({ clientId: m.id('p') })
    await p.publish(`${bom}${base}`, 'x', 1)
    const got = await withBom.expect('publish')
    expect(got.frame.subarray(4, 7)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]))
    expect(await without.quiet(200)).toEqual([])
  })
})
