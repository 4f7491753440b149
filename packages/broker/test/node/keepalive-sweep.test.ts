/**
 * Keepalive on a node, checked by one sweep per broker (seam/keepalive-sweep.ts, issue 15) instead
 * of a timer per connection [MQTT-3.1.2-24]: "If the Keep Alive value is non-zero and the Server
 * does not receive a Control Packet from the Client within one and a half times the Keep Alive time
 * period, it MUST disconnect the Network Connection to the Client as if the network had failed".
 * Measured from the client's last packet: not before 1.5 x, and not long after (the sweep runs
 * every SWEEP_MS and dates a packet by its own time, so up to 2 x SWEEP_MS late; the rest of the
 * bound is slack for a loaded machine).
 */
import { afterAll, expect, it } from 'vitest'
import { SWEEP_MS } from '../../src/seam/index.js'
import { closeRaw, rawClient, type Raw } from '../helpers/raw-mqtt.js'
import { useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()
afterAll(closeRaw)

/** resolves with the time the server closed `raw`'s connection */
const closedAt = (raw: Raw): Promise<number> =>
  raw.closed ? Promise.resolve(Date.now()) : new Promise((resolve) => raw.socket.once('close', () => resolve(Date.now())))

it('[MQTT-3.1.2-24] a client silent for 1.5 x its keepalive (1 s) after its last packet is disconnected, not before; one that sends a packet within each 1.5 x (keepalive 2 s) stays', async () => {
  const { raw: silent } = await rawClient(t.node.ports.mqtt, { clientId: 'ka-silent', keepalive: 1 })
  const { raw: talker } = await rawClient(t.node.ports.mqtt, { clientId: 'ka-talker', keepalive: 2 })
  const talkerUp = Date.now()
  const closed = closedAt(silent)
  const ping = setInterval(() => talker.send({ cmd: 'pingreq' }), 1000)
  try {
    // the silent client's last packet: a PINGREQ, sent after its CONNACK (the server reads it after `last`)
    const last = Date.now()
    silent.send({ cmd: 'pingreq' })
    const at = await closed
    expect(at - last).toBeGreaterThanOrEqual(1500)
    expect(at - last).toBeLessThan(1500 + 2 * SWEEP_MS + 2000)
    expect(silent.packets.map((p) => p.cmd)).toEqual(['connack', 'pingresp'])
    // the talker, 2 s keepalive, lives past its 3 s bound (and the sweep after it) on its pings alone
    await waitFor(() => Date.now() - talkerUp > 3000 + 2 * SWEEP_MS + 1000, 8000, 'past 1.5 x the talker keepalive')
    expect(talker.closed).toBe(false)
    expect(t.node.broker.connectedClients).toBe(1)
  } finally {
    clearInterval(ping)
  }
})
