/**
 * [MQTT-4.3.2-2] [MQTT-4.6.0-6] A persistent session that reconnects while messages keep coming
 * gets every one of them, with an outgoing window (max_outgoing_inflight) smaller than what
 * arrived during its replay. Live deliveries during the replay wait (broker/session-order.ts) and
 * then meet a window counted full by deliveries that completed without a PUBLISH (those the replay
 * had sent already): with no PUBACK left to come, nothing released them and the session stalled.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { useTestNode } from '../helpers/node.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { waitFor } from '../helpers/wait.js'

for (const w of [1, 3]) {
  describe(`max_outgoing_inflight ${w}`, () => {
    const t = useTestNode({ max_outgoing_inflight: w })
    afterAll(closeAllClients)
    it(`a session resumed while publishers keep sending gets every acknowledged message (window ${w}) [MQTT-4.3.2-2]`, async () => {
      const id = `resume-window-${w}`
      const first = await mqttConnect(t.url, { clientId: id, clean: false })
      await first.subscribeAsync(`${id}/#`, { qos: 1 })
      await first.endAsync()
      const pub = await mqttConnect(t.url, { clientId: `${id}-pub` })
      const acked: string[] = []
      let running = true
      // 8 publishers' worth of messages in flight, before, across and after the reconnect
      const publishing = Promise.all(
        Array.from({ length: 8 }, async (_, k) => {
          for (let i = 0; running; i++) {
            await pub.publishAsync(`${id}/t`, `${k}:${i}`, { qos: 1 })
            acked.push(`${k}:${i}`)
          }
        }),
      )
      await waitFor(() => acked.length >= 50, 10_000, '50 messages queued for the offline session')
      // what the session got, over all its connections
      const received = new Set<string>()
      for (let round = 0; round < 5; round++) {
        // from the start: the queue can come in the same read as the CONNACK, before `await` resumes
        const again = await mqttConnect(t.url, { clientId: id, clean: false }, (c) => c.on('message', (_t, payload) => received.add(payload.toString())))
        const before = acked.length
        await waitFor(() => acked.length >= before + 100, 10_000, '100 more messages acknowledged')
        const want = acked.slice(0, before + 100)
        await waitFor(() => want.every((p) => received.has(p)), 10_000, 'every acknowledged message at the session').catch((err: Error) => {
          throw new Error(`${err.message} (round ${round}: ${want.filter((p) => !received.has(p)).length} of ${want.length} missing)`)
        })
        await again.endAsync()
      }
      running = false
      await publishing
      expect(acked.length).toBeGreaterThan(500)
    })
  })
}
