/**
 * The seam to the server-sent DISCONNECT of aedes 2.0.0-beta.1 for MQTT 5 clients
 * (docs/internals.md rows V6, V10, test/seam/contract-v5.test.ts): a client id taken over from
 * another node, and a client closed during its session's queue replay. Split from
 * seam/aedes-v5.ts.
 */
import type { Aedes, Client } from 'aedes'
import { write as aedesWrite } from './aedes-deliver.js'
import { onEachClientV5 } from './aedes-v5-fields.js'
import { wrapNewClientsListener, type NewClientsDone } from './aedes-new-clients.js'

/**
 * V6 a client id connecting on another node closes the connection of that id here: Aedes' own
 * listener on `$SYS/+/new/clients` (aedes.js `closeSameClients`, wrapped through
 * seam/aedes-new-clients.ts) calls `client.close()`, so a v5 client learns nothing, where a
 * takeover on the same node sends DISCONNECT 0x8E (aedes.js registerClient). `takeover` is called
 * first for the client another node took: true = it handled the close (and calls `done`), false =
 * Aedes' own listener runs. No upstream issue found (upstream could use client.disconnect there).
 */
export function onRemoteTakeover(broker: unknown, takeover: (client: Client, done: NewClientsDone) => boolean): void {
  wrapNewClientsListener(broker as Aedes, (own, b) => (packet, done) => {
    const serverId = packet.topic.split('/')[1]
    const client = b.clients[packet.payload.toString()]
    if (client && serverId !== b.id && !client.closed && takeover(client, done)) return
    own(packet, done)
  })
}

interface DisconnectOpts {
  reasonCode?: number
  properties?: Record<string, unknown>
}
type Disconnect = (opts?: DisconnectOpts | (() => void), done?: () => void) => void
/** the Client fields lib/client.js `disconnect` and lib/handlers/connect.js use */
interface DisconnectFields {
  version?: number | null
  connected?: boolean
  connecting?: boolean
  connackSent?: boolean
  closed?: boolean
  errored?: boolean
  disconnectReasonCode?: number
  disconnect: Disconnect
  close(done?: () => void): void
  emit(event: string, err: Error): boolean
}
/** a v5 client whose CONNACK was written and whose queue is still being replayed */
const replaying = (c: DisconnectFields): boolean => c.version === 5 && !c.connected && !!c.connackSent && !c.closed && !c.errored

/** the Client prototype's `disconnect` (lib/client.js), per prototype seen */
const aedesDisconnect = new WeakMap<object, Disconnect>()
/** lib/client.js `disconnect`, and for a v5 client in its replay what it does for a connected one */
function disconnectDuringReplay(this: DisconnectFields, opts?: DisconnectOpts | (() => void), done?: () => void): void {
  if (typeof opts === 'function') {
    done = opts
    opts = {}
  }
  if (!replaying(this)) return aedesDisconnect.get(Object.getPrototypeOf(this) as object)!.call(this, opts, done)
  const reasonCode = opts?.reasonCode ?? 0
  this.disconnectReasonCode = reasonCode
  const packet: { cmd: string; reasonCode: number; properties?: Record<string, unknown> } = { cmd: 'disconnect', reasonCode }
  if (opts?.properties) packet.properties = opts.properties
  // lib/write.js writes while `connecting` (true until the replay ends): after the packets already written, through the write hooks
  aedesWrite(this as unknown as Parameters<typeof aedesWrite>[0], packet, (err) => {
    if (err) this.emit('error', err)
    this.close(done)
  })
}

/**
 * V10 lib/client.js `disconnect` writes a DISCONNECT only for a `connected` client, which a client
 * becomes only once lib/handlers/connect.js has written its CONNACK (`connackSent`, set in
 * doConnack's write callback) and replayed its session's queue (emptyQueue): a v5 client taken
 * over in between (aedes.js registerClient, V6 from another node) or closed for a protocol error
 * was closed without DISCONNECT [MQTT-3.14.0-1]. Each v5 client's `disconnect` (an own property:
 * one shared function) writes it then too, as for a connected client (lib/write.js writes while
 * `connecting`), then closes; the messages of the queue not yet acknowledged stay in the
 * persistence for the next connection. No upstream issue found (upstream could test connackSent).
 */
export function disconnectDuringQueueReplay(broker: Aedes): void {
  onEachClientV5(broker, (client) => {
    const c = client as unknown as DisconnectFields
    const proto = Object.getPrototypeOf(c) as object
    if (!aedesDisconnect.has(proto)) aedesDisconnect.set(proto, (proto as DisconnectFields).disconnect)
    c.disconnect = disconnectDuringReplay
  })
}

/**
 * a server-sent DISCONNECT with `reasonCode` for a v5 client whose CONNACK was written
 * (client.disconnect, public in aedes 2, and V10 during its queue replay: written, then the
 * connection closed), or false for any other client
 */
export function disconnectV5(client: Client, reasonCode: number, done?: () => void): boolean {
  const c = client as unknown as DisconnectFields
  if (c.version !== 5 || c.closed || !(c.connected || replaying(c))) return false
  c.disconnect({ reasonCode }, done ?? (() => {}))
  return true
}
