/**
 * Closing a client's connection from the server side. An MQTT 5 client is told why first, with a
 * DISCONNECT and its reason code (MQTT 5.0 §3.14.2.1) [MQTT-3.14.0-1]; a 3.1.1 client has no
 * server DISCONNECT and is closed as before.
 */
import type { Client } from 'aedes'
import { disconnectV5 } from '../seam/index.js'

/** DISCONNECT reason codes Culex sends (MQTT 5.0 §3.14.2.1) */
export const DisconnectReason = {
  serverShuttingDown: 0x8b,
  sessionTakenOver: 0x8e,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
} as const

/** close `client`'s connection; a v5 client gets a DISCONNECT with `reason` first */
export function disconnectClient(client: Client, reason: number): void {
  if (!disconnectV5(client, reason)) client.conn.destroy()
}
