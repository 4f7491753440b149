/**
 * keepalive_max_s is applied server-side, as EMQX does with keepalive_max: a client asking for a
 * longer keepalive, or for none (0), is accepted (MQTT 3.1.1 has no CONNACK code to refuse it;
 * Aedes answered 6) and dropped after 1.5 x the cap of silence [MQTT-3.1.2-24]. The cap is a
 * per-node setting, so one mode (in memory) covers it.
 */
import { expect, it } from 'vitest'
import { forEachMode } from './modes.js'

forEachMode(
  (m) => {
    it('[MQTT-3.1.2-24] [MQTT-3.2.2-6] keepalive 0 and a keepalive above keepalive_max_s (1 s) get CONNACK 0 and are dropped after 1.5 s of silence', async () => {
      const none = await m.raw()
      const long = await m.raw()
      const within = await m.raw()
      // before the CONNECTs are sent: the server's timers start when it reads them
      const t0 = Date.now()
      expect((await none.connect({ clientId: m.id('ka0'), keepalive: 0 })).frame).toEqual(Buffer.from([0x20, 2, 0, 0]))
      expect((await long.connect({ clientId: m.id('ka3600'), keepalive: 3600 })).frame).toEqual(Buffer.from([0x20, 2, 0, 0]))
      expect(await within.connect({ clientId: m.id('ka1'), keepalive: 1 })).toMatchObject({ returnCode: 0 })
      // a client that keeps talking stays
      const ping = setInterval(() => within.send({ cmd: 'pingreq' }), 400)
      try {
        await Promise.all([none.closedBy(4000), long.closedBy(4000)])
        expect(Date.now() - t0).toBeGreaterThanOrEqual(1400)
        expect(within.closed).toBe(false)
      } finally {
        clearInterval(ping)
      }
    })
  },
  { keepalive_max_s: 1 },
  ['memory'],
)
