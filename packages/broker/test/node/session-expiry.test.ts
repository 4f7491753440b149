/**
 * MQTT 5 session expiry on a single node (in memory, Aedes' own timers): the session ends when its
 * interval passes, and the client is told it has none [MQTT-3.2.2-1]; session_expiry_max_s caps it
 * (broker/create.ts passes it to Aedes as sessionExpiryIntervalLimit).
 */
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { IConnackPacket } from 'mqtt'
import mqtt from 'mqtt'
import { useTestNode } from '../helpers/node.js'

const t = useTestNode({ session_expiry_max_s: 2 })

async function v5(clientId: string, sessionExpiryInterval: number): Promise<{ client: mqtt.MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(t.url, { reconnectPeriod: 0, protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval } })
  const connack = await new Promise<IConnackPacket>((resolve, reject) => client.once('connect', resolve).once('error', reject))
  return { client, connack }
}

describe('single node: MQTT 5 session expiry', () => {
  it('[MQTT-3.1.2-23] [MQTT-3.2.2-1] a session held to session_expiry_max_s (the CONNACK says so) expires; the client comes back to Session Present 0', async () => {
    const first = await v5('nexp-1', 3600)
    expect(first.connack.properties?.sessionExpiryInterval).toBe(2)
    await first.client.subscribeAsync('nexp/1', { qos: 1 })
    const again = await v5('nexp-1', 3600)
    expect(again.connack.sessionPresent).toBe(true)
    const expired = once(t.node.broker as unknown as NodeJS.EventEmitter, 'sessionExpired')
    await again.client.endAsync()
    const gone = Date.now()
    await expired
    expect(Date.now() - gone).toBeGreaterThanOrEqual(1900)
    const back = await v5('nexp-1', 10)
    expect(back.connack.sessionPresent).toBe(false)
    await back.client.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
  })
})
