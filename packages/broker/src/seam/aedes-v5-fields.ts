/**
 * What the seam's MQTT 5 modules share (seam/aedes-v5.ts, aedes-v5-packets.ts,
 * aedes-v5-disconnect.ts): the Client fields of aedes 2.0.0-beta.1 they read, and the 'mqtt5'
 * stage's one per-client installer. Not exported from seam/index.ts.
 */
import type { Aedes, Client } from 'aedes'
import { installOnEachClient } from './aedes-install.js'

/** the Client fields of the beta these touch */
export interface V5Fields {
  version?: number | null
  conn: NodeJS.WritableStream
  receiveMaximum?: number
  maximumPacketSize?: number
}
export const v5 = (client: Client): V5Fields => client as unknown as V5Fields

/** the 'mqtt5' stage's per-client installers (one installOnEachClient per stage) */
const v5Installers = new WeakMap<Aedes, Array<(client: Client) => void>>()
export function onEachClientV5(broker: Aedes, install: (client: Client) => void): void {
  let list = v5Installers.get(broker)
  if (!list) {
    const all: Array<(client: Client) => void> = (list = [])
    v5Installers.set(broker, all)
    installOnEachClient(broker, 'mqtt5', (client) => {
      for (let i = 0; i < all.length; i++) all[i]!(client)
    })
  }
  list.push(install)
}
