/**
 * The authorize hooks:
 * - authorizePublish: clients never publish to $SYS (Aedes' own default does
 *   the same; without it a client could forge `$SYS/<node>/new/clients` and
 *   disconnect others, aedes#597), topic length, ACL. A denied PUBLISH
 *   closes the connection [MQTT-3.3.5-2]: it reaches no subscriber, is
 *   counted in culex_publish_denied_total, and every node does the same.
 *   An MQTT 5 client's denied QoS 1/2 PUBLISH gets PUBACK/PUBREC 0x87
 *   instead and its connection stays (Aedes 2; QoS 0: dropped).
 * - authorizeSubscribe: a denied filter gets return code 0x80 in the SUBACK
 *   [MQTT-3.9.3-2] (0x87 for MQTT 5 clients, broker/mqtt5.ts); the others in
 *   the same SUBSCRIBE are unaffected. A shared
 *   subscription `$share/g/f` is checked as `f`; PUBLISH to `$share/...` is refused.
 * - authorizeForward: the ACL is checked again for each delivered message,
 *   so a deny rule that overlaps a wider allowed subscription, and ACL
 *   changes, apply to existing subscriptions at once. No allocation.
 */
import type { AedesOptions } from 'aedes'
import { canPublish, canRead, canSubscribe } from './acl.js'
import { AUTH, grantsOf, type AuthClient } from './client-auth.js'
import type { HookOptions } from './hooks.js'
import { protocolVersion } from '../seam/index.js'
import { aclFilter, isShareTopic } from '../shared/names.js'

/** the brokers' own namespace: no client publishes there, nor names it as its will topic */
export const SYS = '$SYS'

export interface Authorize {
  authorizePublish: AedesOptions['authorizePublish']
  authorizeSubscribe: AedesOptions['authorizeSubscribe']
  authorizeForward: AedesOptions['authorizeForward']
}

export function createAuthorize(opts: HookOptions): Authorize {
  const { state, counters, log } = opts

  const authorizePublish: AedesOptions['authorizePublish'] = (client, packet, callback) => {
    const topic = packet.topic
    // [aedes#597] keep Aedes' default: $SYS is the brokers' own namespace
    if (topic.startsWith(SYS)) {
      counters.publishDenied++
      return callback(new Error('$SYS topics are reserved'))
    }
    // `$share/...` names shared subscriptions (shared/names.ts), never a message: refused like
    // any topic the client may not use, by closing the connection (3.1.1 has no PUBACK code)
    if (isShareTopic(topic)) {
      counters.publishDenied++
      return callback(new Error('$share topics are reserved for shared subscriptions'))
    }
    // wills of clients of a dead node are published without a client: they were checked at CONNECT
    if (!client) return callback(null)
    if (topic.length > opts.maxTopicLength) {
      counters.publishDenied++
      return callback(new Error('topic longer than max_topic_length'))
    }
    const auth = (client as AuthClient)[AUTH]
    if (auth) {
      const g = grantsOf(auth, state)
      if (g && !canPublish(g, topic, auth.username, client.id)) {
        counters.publishDenied++
        // MQTT 5: Aedes answers PUBACK/PUBREC 0x87 and the connection stays, so a client may repeat it
        if (protocolVersion(client) === 5) log.debug({ client: client.id, username: auth.username, topic }, 'publish denied by ACL: 0x87')
        else log.warn({ client: client.id, username: auth.username, topic }, 'publish denied by ACL: closing the connection [MQTT-3.3.5-2]')
        return callback(new Error('publish denied'))
      }
    }
    callback(null)
  }

  const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (client, sub, callback) => {
    if (sub.topic.length > opts.maxTopicLength) return callback(null, null)
    const auth = (client as AuthClient)[AUTH]
    if (auth) {
      const g = grantsOf(auth, state)
      // `$share/g/f` needs subscribe permission on `f` (shared/names.ts)
      if (g && !canSubscribe(g, aclFilter(sub.topic), auth.username, client.id)) {
        log.debug({ client: client.id, username: auth.username, filter: sub.topic }, 'subscription denied by ACL (0x80)')
        return callback(null, null) // [MQTT-3.9.3-2] return code 0x80 for this filter
      }
    }
    callback(null, sub)
  }

  const authorizeForward: AedesOptions['authorizeForward'] = (client, packet) => {
    const auth = (client as AuthClient)[AUTH]
    if (auth === undefined || state.acl === undefined) return packet
    const g = grantsOf(auth, state)
    return g === undefined || canRead(g, packet.topic, auth.username, client.id) ? packet : null
  }

  return { authorizePublish, authorizeSubscribe, authorizeForward }
}
