/**
 * Row A23 (docs/internals.md, contract in test/seam/contract-replay.test.ts): the replay of a
 * session's queue at CONNECT paced from outside, so that it can wait for room in the client's
 * in-flight window (limits/client-guard.ts, the client's Receive Maximum [MQTT-3.3.4-9]).
 *
 * aedes 2.0.0-beta.1 lib/handlers/connect.js emptyQueue pipes `persistence.outgoingStream(client)`
 * through `clearQueue`, one queued message at a time: it calls `persistence.outgoingUpdate(client,
 * packet)` (looked up on the persistence at call time), writes the packet once that resolves
 * (emptyQueueFilter -> lib/write.js, through the write hooks) and takes the next message only
 * when that write is done (the packet's writeCallback is the stream's `next`). Meanwhile the
 * client is `connecting` and not `connected` (set once the replay is done; live deliveries to it
 * wait for that: broker/session-order.ts). So a wait before outgoingUpdate holds the rest of the
 * replay, in order, and nothing else: the client's other packets are handled meanwhile (lib/client.js
 * enqueue hands them on once `connackSent`). A wait that never ends (the connection closed first)
 * leaves the rest of the queue unsent and unchanged in the session store, for the next CONNECT:
 * the replay's streams, no longer referenced by anything live, go with the Client.
 *
 * Cost: one check (`connected`) per outgoingUpdate, that is per QoS 1/2 delivery of a persistent
 * session; clean sessions do not call it (lib/client.js deliverQoS, seam/aedes-deliver.ts).
 * No upstream issue for the window (aedes#829: Aedes does not honour the Receive Maximum).
 */
import type { Aedes, Client } from 'aedes'
import { wrapOutgoingAcks } from './aedes-routing.js'

/** the Client fields of lib/client.js read here */
interface ReplayFields {
  connected?: boolean
  connecting?: boolean
}

/** per client: what to call when its replay first waits (onceReplayWaits) */
const firstWait = new WeakMap<object, () => void>()

/**
 * `fn` once the replay at CONNECT of `client` first waits for room (paceSessionReplay's `roomFor`
 * returned a promise): from then on it goes at the pace of the client's acknowledgements, however
 * long that lasts. Never called for a replay that does not wait.
 */
export function onceReplayWaits(client: Client, fn: () => void): void {
  firstWait.set(client, fn)
}

/**
 * `roomFor(client)` is asked before each QoS 1/2 PUBLISH the replay at CONNECT sends (not for a
 * PUBREL it resends): undefined sends it now; a promise holds it, and the rest of the replay,
 * until it resolves.
 */
export function paceSessionReplay(broker: Aedes, roomFor: (client: Client) => Promise<void> | undefined): void {
  wrapOutgoingAcks(broker, ({ outgoingUpdate }) => ({
    outgoingUpdate: (client, packet) => {
      const c = client as unknown as ReplayFields
      // a live delivery (connected), or no replay: as before
      if (c.connected || !c.connecting || packet.cmd !== 'publish') return outgoingUpdate(client, packet)
      const wait = roomFor(client)
      if (wait === undefined) return outgoingUpdate(client, packet)
      const waits = firstWait.get(client)
      if (waits) {
        firstWait.delete(client)
        waits()
      }
      return wait.then(() => outgoingUpdate(client, packet))
    },
  }))
}
