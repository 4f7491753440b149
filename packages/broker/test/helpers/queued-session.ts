/** An MQTT 5 session with QoS 1 messages queued for it while its client is away (raw MQTT). */
import { Raw } from '../conformance/raw.js'
import { waitFor } from './cluster-procs.js'

/** `id` gets a session on `port` (Session Expiry 60) subscribed to `q/<id>` with `queued` QoS 1 messages waiting */
export async function queuedSession(port: number, id: string, queued: number): Promise<void> {
  const sub = await Raw.open(port, 5)
  await sub.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await sub.subscribe(`q/${id}`, 1)
  await sub.disconnect({ reasonCode: 0 })
  const pub = await Raw.open(port, 5)
  await pub.connect({ clientId: `${id}-pub` })
  for (let i = 0; i < queued; i++) pub.send({ cmd: 'publish', topic: `q/${id}`, payload: String(i), qos: 1, messageId: i + 1 })
  await waitFor(() => pub.packets.filter((p) => p.cmd === 'puback').length === queued, 20_000, 'all PUBACKs')
  pub.destroy()
}
