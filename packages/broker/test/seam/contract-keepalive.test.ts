/**
 * Contract of seam/keepalive-sweep.ts (docs/internals.md, row C17): Aedes sets
 * `client._keepaliveInterval` (1.5 x the keepalive, ms, + 1) and a Timeout in `_keepaliveTimer`
 * before the 'client' event, calls `_keepaliveTimer.refresh()` for every packet, and on close
 * clears it with clearTimeout (which ignores another object) and sets it to null; the sweep that
 * replaces the Timeout closes a silent client as Aedes' timer did ('keepaliveTimeout', then closed).
 */
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

type KeepaliveFields = { _keepaliveInterval: number; _keepaliveTimer: { refresh(): unknown; _onTimeout?: unknown } | null; closed: boolean }
const fields = (c: Client): KeepaliveFields => c as unknown as KeepaliveFields

describe('seam contract: C17 the keepalive timer of a Client', () => {
  it('C17 at the client event: _keepaliveInterval is 1.5 x keepalive + 1 ms and _keepaliveTimer a Timeout; each packet calls its refresh(); close clears it (another object too) and sets it null', async () => {
    const s = await stockBroker()
    const registered = once(s.broker, 'client') as Promise<[Client]>
    const { raw } = await rawClient(s.port, { clientId: 'c17', keepalive: 2 })
    const [client] = await registered
    const f = fields(client)
    expect(f._keepaliveInterval).toBe(3001)
    expect(typeof f._keepaliveTimer?.refresh).toBe('function')
    expect(f._keepaliveTimer?._onTimeout).toBeTypeOf('function')
    clearTimeout(f._keepaliveTimer as unknown as NodeJS.Timeout)
    let refreshed = 0
    f._keepaliveTimer = { refresh: () => refreshed++ }
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
    expect(refreshed).toBe(1)
    raw.send({ cmd: 'disconnect' })
    await eventually(() => (f.closed ? true : undefined), 3000, 'closed')
    expect(f._keepaliveTimer).toBeNull()
  })

  it('C17 sweepKeepalives: the Timeout gives way to a stamp; a client silent for 1.5 x its keepalive (1 s) gets keepaliveTimeout and is closed [MQTT-3.1.2-24], one that talks is not', async () => {
    const s = await stockBroker({}, (broker) => seam.sweepKeepalives(broker))
    const timedOut: string[] = []
    s.broker.on('keepaliveTimeout', (c) => timedOut.push(c.id))
    const registered = once(s.broker, 'client') as Promise<[Client]>
    const t0 = Date.now()
    const { raw: silent } = await rawClient(s.port, { clientId: 'c17-silent', keepalive: 1 })
    const [client] = await registered
    expect(fields(client)._keepaliveTimer?._onTimeout).toBeUndefined()
    const { raw: talker } = await rawClient(s.port, { clientId: 'c17-talker', keepalive: 1 })
    const ping = setInterval(() => talker.send({ cmd: 'pingreq' }), 300)
    try {
      await eventually(() => (silent.closed ? true : undefined), 5000, 'the silent client closed')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500)
      expect(timedOut).toEqual(['c17-silent'])
      expect(talker.closed).toBe(false)
    } finally {
      clearInterval(ping)
    }
  })
})
