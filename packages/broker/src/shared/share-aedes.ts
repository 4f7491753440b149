/**
 * Shared subscriptions wired into Aedes 2, through the seam (src/seam/: gateEmits, emitMessage,
 * onEveryMessage (message-hook.ts), wrapOutgoingAcks, keepInSession, clientsOf, deliveryOf, onWrite,
 * brokerClosing, clientClosed).
 *
 * A `$share/g/f` subscription stays an ordinary subscription for Aedes (stored with the session,
 * restored on reconnect, removed on UNSUBSCRIBE): its literal filter matches no message, since
 * nobody may publish to `$share/...` (auth/hooks.ts), and for the same reason no retained
 * message is ever sent to it [MQTT-4.8.2 in v5: no retained messages to shared subscriptions].
 * The messages for the group go their own way: router.ts picks, this file delivers.
 */
import type { Aedes, Client } from 'aedes'
import type { Logger } from '../log.js'
import { brokerClosing, clientClosed, clientsOf, deliveryOf, emitMessage, gateEmits, keepInSession, onWrite, v5SubscriptionsOf, wrapOutgoingAcks } from '../seam/index.js'
import { switchedMessageHook } from './message-hook.js'
import { parseShare, SHARE_PREFIX } from './names.js'
import { fieldOfDelivery, REDISPATCH_TOPIC, type MemberPacket, type SharePacket, type ShareRouter } from './router.js'

type Done = (err?: Error | null) => void
const noop: Done = () => {}
const EMPTY = Buffer.alloc(0)

/** the public Client fields used, and the connection's stream */
interface ClientInternals {
  id: string
  clean: boolean
  conn: NodeJS.WritableStream
}

/** per connection: packet id -> in-flight record of the share deliveries written to it */
const SENT = Symbol('culex.share.sent')
type Tracked = ClientInternals & { [SENT]?: Map<number, string> }

export async function installShare(broker: Aedes, router: ShareRouter, log: Logger): Promise<{ close(): void }> {
  // authorizeSubscribe is a public Aedes option, read at call time (lib/handlers/subscribe.js)
  const b = broker as unknown as {
    authorizeSubscribe: (client: Client, sub: { topic: string; qos: number }, done: (err: Error | null, sub?: unknown) => void) => void
  }

  // ---- picking: every message Aedes emits (aedes.js emitPacket) ----------------------------
  gateEmits(broker, (emit) => (packet: unknown, cb: Done = noop): unknown => {
    // no group anywhere in the cluster (this node's view, kept current before any SUBACK): one check
    if (router.groups.size === 0) return emit(packet, cb)
    let wait: Promise<unknown> | undefined
    try {
      wait = router.choose(packet as SharePacket)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'shared subscription: choice failed')
    }
    if (!wait) return emit(packet, cb)
    // the publisher's PUBACK waits for the in-flight records too (router.ts)
    let left = 2
    let failed: Error | null = null
    const part: Done = (err) => {
      if (err && !failed) failed = err
      if (--left === 0) cb(failed)
    }
    wait.then(() => part(), (err: Error) => part(err))
    return emit(packet, part)
  })

  // ---- delivering: every message reaches this listener, on every node, while a group exists --
  const dispatch = (packet: SharePacket, cb: () => void): void => {
    try {
      router.dispatch(packet, cb)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'shared subscription: delivery failed')
      cb()
    }
  }
  const hook = switchedMessageHook(broker, dispatch as (message: unknown, cb: () => void) => void, log)

  // [MQTT-3.3.4-3] (v5): the Subscription Identifier of the member's `$share/<key>` subscription
  // (the beta adds identifiers in the per-subscription listener, which a share delivery does not pass)
  const withSubscriptionId = (c: Client, packet: MemberPacket, key: string): void => {
    const si = v5SubscriptionsOf(c)?.[SHARE_PREFIX + key]?.si
    if (si !== undefined) packet.properties = { ...packet.properties, subscriptionIdentifier: si }
  }
  const host = {
    client: (id: string) => clientsOf(broker)[id] as unknown as ClientInternals | undefined,
    stopping: () => brokerClosing(broker),
    keep(conn: object, packet: MemberPacket, key: string): Promise<void> {
      withSubscriptionId(conn as Client, packet, key)
      return keepInSession(broker, (conn as ClientInternals).id, packet)
    },
    deliver(conn: object, packet: MemberPacket, cb: () => void, key: string): void {
      const c = conn as Tracked
      withSubscriptionId(c as unknown as Client, packet, key)
      if (packet.qos > 0 && !c[SENT]) {
        const sent = new Map<number, string>()
        c[SENT] = sent
        // Aedes internals: the packet id Aedes gives a QoS 1/2 message (lib/qos-packet.js) is only
        // known as it is written (conformance-writes.ts sees every packet written)
        onWrite(c.conn, (p) => {
          const field = p.cmd === 'publish' && p.messageId !== undefined ? fieldOfDelivery((p as { brokerId?: unknown }).brokerId, (p as { brokerCounter?: unknown }).brokerCounter) : undefined
          if (field === undefined) return
          // [MQTT-4.8.2-5] a QoS 2 message written to a member whose session ends with its connection
          // is that session's: released now, it goes to no other member when the connection ends,
          // acknowledged or not (a PUBREC of 0x80 or more included [MQTT-4.8.2-6]); a member whose
          // session outlives it has its QoS 2 deliveries in that session (delivery.ts handOff)
          if ((p as { qos?: number }).qos === 2 && c.clean !== false) router.acked(c.id, field)
          else sent.set(p.messageId!, field)
        })
      }
      // through the client's own delivery functions: slow-consumer limits, ACL on forward, byte accounting
      const d = deliveryOf(c as unknown as Client)
      if (packet.qos > 0) d.deliverQoS(packet, cb)
      else d.deliver0(packet, cb)
    },
    emit(packet: SharePacket): void {
      emitMessage(broker, packet, (err) => err && log.warn({ err: err.message }, 'shared subscription: redispatch not sent to every node'))
    },
    // an empty share-only message that picks no member (`share` set: router.choose skips it,
    // router.dispatch delivers it to nobody); its emit callback comes after those of the messages
    // emitted before it (the cluster bus settles its batches in order, bus.ts, and holds them all
    // alike under a peer's pressure), an error (emitter closing) is no reason to wait. Then two
    // turns' check phases: the PUBACKs those callbacks released are written to corked sockets
    // flushed by a setImmediate (listeners/write-batching.ts), and the join's acknowledgement,
    // which goes to Redis at once, must not leave before them (a node descheduled in between on a
    // loaded machine let the member's SUBACK overtake the publisher's PUBACK: share-join-order)
    barrier: () =>
      new Promise<void>((resolve) => void emitMessage(broker, { cmd: 'publish', topic: REDISPATCH_TOPIC, payload: EMPTY, qos: 0, retain: false, share: [] }, () => setImmediate(() => setImmediate(resolve)))),
  }

  // ---- acknowledgements: a QoS 1 share delivery is no session message ----------------------
  wrapOutgoingAcks(broker, ({ outgoingUpdate: update, outgoingClearMessageId: clear }) => ({
  outgoingUpdate: (client, packet) => {
    // the session store keeps nothing for QoS 1 share deliveries: a member that goes away does not
    // get them back on reconnect, another member gets them at once (router.ts); QoS 2 ones kept in
    // the session (SESSION_PREFIX, no field) go through
    if (fieldOfDelivery(packet.brokerId, packet.brokerCounter) !== undefined) return Promise.resolve()
    if (packet.cmd === 'pubrel' && packet.messageId !== undefined && (client as Tracked)[SENT]?.has(packet.messageId)) return Promise.resolve()
    return update(client, packet)
  },
  outgoingClearMessageId: (client, packet) => {
    const sent = (client as Tracked)[SENT]
    const field = packet.messageId !== undefined ? sent?.get(packet.messageId) : undefined
    if (field === undefined) return clear(client, packet)
    sent!.delete(packet.messageId!)
    router.acked(client.id as string, field)
    return Promise.resolve(undefined)
  },
  }))

  // ---- membership --------------------------------------------------------------------------
  // Aedes internals: Aedes reads broker.authorizeSubscribe at call time (lib/handlers/subscribe.js
  // authorize), for a SUBSCRIBE and for each subscription restored with a persistent session
  const authorize = b.authorizeSubscribe.bind(broker)
  b.authorizeSubscribe = (client, sub, done) => {
    const share = parseShare(sub.topic)
    if (share === undefined) return authorize(client, sub, done)
    // [MQTT-4.8.2-1] [MQTT-4.8.2-2] (v5): an invalid share name gets 0x80 (3.1.1) [MQTT-3.9.3-2]
    if (share === 'invalid') return done(null, null)
    authorize(client, sub, (err, granted) => {
      if (err || !granted) return done(err, granted)
      const c = client as unknown as ClientInternals
      router.join(c, c.id, c.clean !== false, share.key, sub.qos).then(
        () => done(null, granted),
        (e: Error) => {
          log.warn({ err: e.message, client: c.id, group: share.key }, 'shared subscription: join failed (0x80)')
          done(null, null)
        },
      )
    })
  }
  const shareKeys = (topics: string[]): string[] => topics.map(parseShare).flatMap((s) => (typeof s === 'object' ? [s.key] : []))
  const onUnsubscribe = (topics: string[], client: Client): void => {
    // Aedes internals: a clean session's close unsubscribes everything (lib/client.js close);
    // its end is handled by onGone, which first sends its unacknowledged messages on
    if (clientClosed(client)) return
    const keys = shareKeys(topics)
    if (keys.length > 0) router.leave(client, client.id, keys)
  }
  const drain = (client: Client): void => {
    router.drainFor(client.id).catch((err: Error) => log.warn({ err: err.message }, 'shared subscription: queue drain failed'))
  }
  const onSubscribe = (subs: Array<{ topic: string; qos: number }>, client: Client): void => {
    if (subs.some((s) => s.qos !== 128 && typeof parseShare(s.topic) === 'object')) drain(client)
  }
  // every CONNECT and every close: nothing is made (no promise) when the router has nothing to do
  const onClient = (client: Client): void => {
    if ((client as unknown as ClientInternals).clean !== false) {
      if (router.cleanStartIsNoop()) return
      router.cleanStart(client.id).catch((err: Error) => log.warn({ err: err.message, client: client.id }, 'shared subscription: clean start not handled'))
    } else drain(client)
  }
  const onGone = (client: Client): void => {
    if (!router.isMemberConnection(client, client.id)) return
    router.ended(client, client.id).catch((err: Error) => log.warn({ err: err.message, client: client.id }, 'shared subscription: end of connection not handled'))
  }
  // before the membership loads: on as soon as it has a group
  router.onActive((on) => hook.set(on))
  await router.start(host)
  broker.on('unsubscribe', onUnsubscribe)
  broker.on('subscribe', onSubscribe as never)
  broker.on('client', onClient)
  broker.on('clientDisconnect', onGone)
  return {
    close() {
      hook.close()
      broker.off('unsubscribe', onUnsubscribe)
      broker.off('subscribe', onSubscribe as never)
      broker.off('client', onClient)
      broker.off('clientDisconnect', onGone)
    },
  }
}
