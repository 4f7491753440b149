/** mqtt.js clients for the cluster tests; every client made here is closed by `closeAllClients()`. */
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'

const clients = new Set<MqttClient>()

/**
 * connect and wait for CONNACK (no automatic reconnect unless asked); `created` sees the client
 * before it is connected (listeners on its first packets). Messages are collected
 * from the start: queued messages of a session can arrive in the same read as the CONNACK,
 * before the caller could attach a listener.
 */
export async function mqttConnect(url: string, opts: IClientOptions = {}, created?: (client: MqttClient) => void): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  created?.(client)
  clients.add(client)
  collect(client)
  const packets: IPublishPacket[] = []
  sinceConnect.set(client, packets)
  client.on('message', (_t, _p, packet) => packets.push(packet))
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => reject(err)
    client.once('connect', (connack: IConnackPacket) => {
      connacks.set(client, connack)
      client.off('error', onErr)
      resolve()
    })
    client.once('error', onErr)
    if (!opts.reconnectPeriod) client.once('close', () => reject(new Error(`closed before CONNACK (${url})`)))
  })
  return client
}

const connacks = new WeakMap<MqttClient, IConnackPacket>()

/** the CONNACK mqttConnect got (Session Present, MQTT 5 properties) */
export function connackOf(client: MqttClient): IConnackPacket {
  return connacks.get(client)!
}

export async function closeAllClients(): Promise<void> {
  await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})))
  clients.clear()
}

export interface Got {
  topic: string
  payload: string
  qos: number
  retain: boolean
}

const collected = new WeakMap<MqttClient, Got[]>()

/** every message the client got (since mqttConnect created it) */
export function collect(client: MqttClient): Got[] {
  let got = collected.get(client)
  if (!got) {
    const list: Got[] = []
    got = list
    collected.set(client, list)
    client.on('message', (topic, payload, packet) => list.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }))
  }
  return got
}

const sinceConnect = new WeakMap<MqttClient, IPublishPacket[]>()

/**
 * every PUBLISH packet the client got since mqttConnect created it, with its MQTT 5 properties:
 * what a session gets at once on reconnect (its queue, a shared subscription group's queue) can
 * come in the same read as the CONNACK, and mqtt.js hands it over (process.nextTick) before the
 * caller's `await mqttConnect()` resumes, so a listener attached then would miss it
 */
export function packetsSinceConnect(client: MqttClient): IPublishPacket[] {
  return sinceConnect.get(client)!
}

/** every PUBLISH packet the client gets from now on, with its MQTT 5 properties (a new session: see packetsSinceConnect) */
export function publishPackets(client: MqttClient): IPublishPacket[] {
  const got: IPublishPacket[] = []
  client.on('message', (_t, _p, packet) => got.push(packet))
  return got
}
