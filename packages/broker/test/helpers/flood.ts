/**
 * Load for the overload tests (node/overload, cluster/flood, cluster/overload-held): a raw MQTT
 * publisher that writes flat out without waiting for its acknowledgements, and a subscriber
 * that reads in bursts.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'

/** after every `every` publishes, the flood waits for `until(sent)` (e.g. a reader that keeps up) */
export interface Pace {
  every: number
  until: (sent: number) => Promise<void>
}

/**
 * a raw connection to 127.0.0.1:`port` writing `count` publishes of `size` bytes (the first 6
 * the message's number, zero-padded) as fast as TCP takes them, never waiting for a PUBACK
 * (read and thrown away)
 */
export async function flood(port: number, clientId: string, topic: string, qos: 0 | 1, count: number, size: number, pace?: Pace): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1')
  await once(s, 'connect')
  s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }))
  s.resume()
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(size, 120)
    payload.write(String(i).padStart(6, '0'))
    if (!s.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: qos ? (i % 65535) + 1 : undefined, retain: false, dup: false }))) await once(s, 'drain')
    if (pace && (i + 1) % pace.every === 0) await pace.until(i + 1)
  }
  return s
}

/** `c` reads `on` ms in every 200; the function returned lets it read all the time again */
export function throttle(c: MqttClient, on: number): () => void {
  const stream = (c as unknown as { stream: NodeJS.ReadableStream }).stream
  const t = setInterval(() => {
    stream.pause()
    setTimeout(() => stream.resume(), 200 - on)
  }, 200)
  return () => {
    clearInterval(t)
    stream.resume()
  }
}
