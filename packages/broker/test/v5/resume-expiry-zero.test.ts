/**
 * [MQTT-3.1.2-23] [MQTT-4.6.0-6] A v5 client back with Clean Start 0 resumes its session, whatever Session Expiry
 * Interval it now asks for: Session Present 1 and the QoS 1 messages queued while it was away,
 * also when the new interval is 0 (the session then ends with this connection).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { useTestNode } from '../helpers/node.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'
import { waitFor } from '../helpers/wait.js'

const t = useTestNode()
afterAll(closeAllClients)

describe('resume with a new Session Expiry Interval', () => {
  for (const again of [0, 60]) {
    it(`Clean Start 0, interval ${again} on return: Session Present 1 and every queued message [MQTT-3.1.2-23]`, async () => {
      const id = `resume-se-${again}`
      const first = await mqttConnect(t.url, { clientId: id, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
      await first.subscribeAsync(`${id}/t`, { qos: 1 })
      await first.endAsync()
      const pub = await mqttConnect(t.url, { clientId: `${id}-pub`, protocolVersion: 5 })
      for (let i = 0; i < 5; i++) await pub.publishAsync(`${id}/t`, `m${i}`, { qos: 1 })
      const back = await mqttConnect(t.url, { clientId: id, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: again } })
      expect(connackOf(back)?.sessionPresent).toBe(true)
      const got = collect(back)
      await waitFor(() => got.length >= 5, 5000, `the 5 queued messages (got ${got.length})`)
      expect(got.map((g) => g.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    })
  }
})
