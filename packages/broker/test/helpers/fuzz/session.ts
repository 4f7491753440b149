/**
 * One fuzzing connection with state in place: CONNECT, a subscription to its
 * own topics, a QoS 1 message the node delivered and we never ack, a QoS 2
 * message the node delivered and we never PUBREC, and a QoS 2 PUBLISH of ours
 * the node holds awaiting PUBREL. Each case then sends mutated bytes followed
 * by a PINGREQ: a PINGRESP means the connection survived, a close means the
 * node refused it, silence past the timeout means the bytes left the parser
 * waiting (then the connection is dropped). A case may be written in two
 * pieces a turn apart, so the node's parser also sees it in partial reads.
 */
import { gen, int, pick, type Rand, type SessionState } from './packets.js'
import { openRaw, type RawConn, type ServerPacket, type Transport } from './conn.js'

export type Outcome = 'alive' | 'closed' | 'timeout'
/** why a session could not be set up: no TCP/WebSocket connection, CONNACK not 0, closed, or no PINGRESP in time */
export type SetupFailure = 'connect' | 'connack' | 'setup-closed' | 'setup-timeout'
const PINGREQ = gen({ cmd: 'pingreq' })
const KEEP = 8

/** `bytes` + PINGREQ, split at `cut` (0: one write) with a turn of the event loop between the pieces */
async function writeCase(conn: RawConn, bytes: Buffer, cut: number): Promise<void> {
  const all = Buffer.concat([bytes, PINGREQ])
  if (cut <= 0 || cut >= all.length) return conn.write(all)
  conn.write(all.subarray(0, cut))
  await new Promise((r) => setImmediate(r))
  conn.write(all.subarray(cut))
}

const remember = (list: number[], id: number | undefined): void => {
  if (id === undefined || list.includes(id)) return
  list.push(id)
  if (list.length > KEEP) list.shift()
}

export class FuzzSession {
  private pinged: (() => void) | undefined

  private constructor(
    readonly conn: RawConn,
    readonly state: SessionState,
  ) {
    conn.onPacket = (p) => this.onPacket(p)
  }

  private onPacket(p: ServerPacket): void {
    const s = this.state
    if (p.cmd === 'publish' && p.qos === 1) remember(s.unacked, p.messageId)
    else if (p.cmd === 'publish' && p.qos === 2) remember(s.unreceived, p.messageId)
    else if (p.cmd === 'pubrec') remember(s.awaitingRel, p.messageId)
    else if (p.cmd === 'pingresp') this.pinged?.()
  }

  /** wait for a PINGRESP, the close, or the timeout */
  private settle(timeoutMs: number): Promise<Outcome> {
    return new Promise((resolve) => {
      const done = (o: Outcome): void => {
        clearTimeout(timer)
        this.pinged = undefined
        resolve(o)
      }
      const timer = setTimeout(() => done('timeout'), timeoutMs)
      this.pinged = () => done('alive')
      void this.conn.closed.then(() => done('closed'))
    })
  }

  /** connect (at protocol level `version`) and put the in-flight state in place; or why that failed (no case is sent then) */
  static async open(transport: Transport, port: number, clientId: string, rand: Rand, timeoutMs: number, version: 4 | 5 = 4): Promise<FuzzSession | SetupFailure> {
    let conn: RawConn
    try {
      conn = await openRaw(transport, port, timeoutMs * 4, version)
    } catch {
      return 'connect'
    }
    const base = `fz/${clientId}`
    const session = new FuzzSession(conn, { version, clientId, base, unacked: [], unreceived: [], awaitingRel: [] })
    let acked = false
    const prev = conn.onPacket
    conn.onPacket = (p) => {
      // a v5 CONNACK has a reason code, a 3.1.1 one a return code
      if (p.cmd === 'connack') acked = (p.returnCode ?? p.reasonCode) === 0
      prev(p)
    }
    const rel = 1 + int(rand, 65535)
    const clean = rand() < 0.6
    // v5: a Session Expiry Interval (0: the session ends with the connection), and sometimes what
    // the node must keep to when it sends: a small Receive Maximum, a small Maximum Packet Size
    // (the set-up's own messages fit in 64 bytes), Topic Aliases, no problem information
    const properties =
      version === 5
        ? {
            sessionExpiryInterval: pick(rand, [0, 60]),
            ...(rand() < 0.2 ? { receiveMaximum: pick(rand, [1, 3]) } : {}),
            ...(rand() < 0.2 ? { maximumPacketSize: pick(rand, [64, 100, 512]) } : {}),
            ...(rand() < 0.2 ? { topicAliasMaximum: pick(rand, [1, 10]) } : {}),
            ...(rand() < 0.1 ? { requestProblemInformation: false, requestResponseInformation: true } : {}),
            ...(rand() < 0.1 ? { userProperties: { fz: ['1', '2'] } } : {}),
          }
        : undefined
    conn.write(
      Buffer.concat([
        gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean, keepalive: 60, clientId, properties }, version),
        gen({ cmd: 'subscribe', messageId: 1 + int(rand, 65535), subscriptions: [{ topic: `${base}/#`, qos: 2 }] }, version),
        gen({ cmd: 'publish', topic: `${base}/a`, payload: Buffer.from('q1'), qos: 1, messageId: 1 + int(rand, 65535) }, version),
        gen({ cmd: 'publish', topic: `${base}/b`, payload: Buffer.from('q2'), qos: 2, messageId: rel }, version),
        PINGREQ,
      ]),
    )
    const outcome = await session.settle(timeoutMs * 4)
    if (outcome !== 'alive' || !acked) {
      conn.destroy()
      return outcome === 'alive' ? 'connack' : outcome === 'closed' ? 'setup-closed' : 'setup-timeout'
    }
    return session
  }

  /** send one case (split at `cut`, 0 for one write); the session is done unless the outcome is 'alive' */
  async send(bytes: Buffer, timeoutMs: number, cut = 0): Promise<Outcome> {
    const settled = this.settle(timeoutMs)
    await writeCase(this.conn, bytes, cut)
    const o = await settled
    if (o !== 'alive') this.conn.destroy()
    return o
  }
}

/** a case before CONNECT: mutated CONNECT bytes (and what follows) on a fresh connection; its answers read at level `version` */
export async function preConnectCase(transport: Transport, port: number, bytes: Buffer, timeoutMs: number, cut = 0, version: 4 | 5 = 4): Promise<Outcome | 'connect'> {
  let conn: RawConn
  try {
    conn = await openRaw(transport, port, timeoutMs * 4, version)
  } catch {
    return 'connect'
  }
  let pinged!: () => void
  const pong = new Promise<Outcome>((r) => (pinged = () => r('alive')))
  conn.onPacket = (p) => p.cmd === 'pingresp' && pinged()
  await writeCase(conn, bytes, cut)
  let timer: NodeJS.Timeout | undefined
  const o = await Promise.race([pong, conn.closed.then((): Outcome => 'closed'), new Promise<Outcome>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))])
  clearTimeout(timer)
  conn.destroy()
  return o
}
