/**
 * Topic aliases on the PUBLISHes Culex sends to MQTT 5 clients (§3.3.2.3.4: the server MAY use
 * them), opt-in: `topic_alias_out_max` (0 = off, the default). A client whose CONNECT has a Topic
 * Alias Maximum gets aliases 1..min(its maximum, topic_alias_out_max) on its connection
 * [MQTT-3.3.2-10] [MQTT-3.3.2-11]: the first PUBLISH of a topic carries the topic and a new
 * alias, the later ones an empty topic and the alias; once the aliases are used up, other
 * topics go out whole (the encoding: seam/mqtt-publish.ts). The map is per connection (a new
 * connection starts empty, §3.3.2.3.4) and bounded by that maximum. A packet the alias would make
 * larger than the client's Maximum Packet Size goes out whole [MQTT-3.1.2-24]. A client without a Topic
 * Alias Maximum (0, the default) and every 3.1.1 client is not touched: nothing is kept for it.
 */
import type { Aedes } from 'aedes'
import { aliasTopicsOut, wrapPreConnect } from '../seam/index.js'

interface ConnectPacket {
  protocolVersion?: number
  properties?: { topicAliasMaximum?: number; maximumPacketSize?: number }
}

export function installTopicAliasesOut(broker: Aedes, max: number): void {
  if (max <= 0) return
  // the CONNECT's Topic Alias Maximum, before anything is written to the connection
  wrapPreConnect(broker, (preConnect) => (client, packet, cb) => {
    const p = packet as unknown as ConnectPacket
    const clientMax = p.protocolVersion === 5 ? (p.properties?.topicAliasMaximum ?? 0) : 0
    // client.conn: the connection Aedes writes the client's packets to
    if (clientMax > 0) aliasTopicsOut(client.conn as unknown as NodeJS.WritableStream, Math.min(clientMax, max), p.properties?.maximumPacketSize)
    preConnect(client, packet, cb)
  })
}
