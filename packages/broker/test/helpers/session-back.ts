/**
 * The check of the session-end race tests (cluster/session-end-race, session-close-race,
 * session-fin-race) [MQTT-4.1.0-2]: a client id back at once with Clean Start 0, on the node at
 * `port`, after its session ended elsewhere.
 */
import { expect } from 'vitest'
import { Raw } from '../conformance/raw.js'

export interface Back {
  id: string
  /** the CONNACK's Session Present */
  present: unknown
  /** topics an old subscription delivered before the marker */
  got: unknown[]
}

/** `id` back on `port` with Clean Start 0: its Session Present, and what an `old` subscription got before a marker */
export async function sessionBack(port: number, id: string, old = `old/${id}`): Promise<Back> {
  const c = await Raw.open(port, 5)
  const ack = await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  expect(ack.reasonCode).toBe(0)
  await c.subscribe(`mark/${id}`, 0)
  c.send({ cmd: 'publish', topic: old, payload: 'after the end', qos: 1, messageId: 1 })
  c.send({ cmd: 'publish', topic: `mark/${id}`, payload: 'mark', qos: 0 })
  const got = (await c.until(`mark/${id}`)).filter((p) => p.cmd === 'publish').map((p) => p.topic)
  c.destroy()
  return { id, present: ack.sessionPresent, got }
}

/** the rounds where the ended session was still there */
export const survived = (seen: Back[]): Back[] => seen.filter((s) => s.present !== false || s.got.length > 0)
