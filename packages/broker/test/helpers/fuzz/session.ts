/**
 * One fuzzing connection with state in place: CONNECT, a subscription to its
 * own topics, a QoS 1 message the node delivered and we never ack, a QoS 2
 * message the node delivered and we never PUBREC, and a QoS 2 PUBLISH of ours
 * the node holds awaiting PUBREL. Each case then sends mutated bytes followed
 * by a PINGREQ: a PINGRESP means the connection survived, a close means the
 * node refused it, silence past the timeout means the bytes left the parser
 * waiting (then the connection is dropped).
 */
import { gen, int, type Rand, type SessionState } from './packets.js'
import { openRaw, type RawConn, type ServerPacket, type Transport } from './conn.js'

export type Outcome = 'alive' | 'closed' | 'timeout'
const PINGREQ = gen({ cmd: 'pingreq' })
const KEEP = 8

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

  /** connect and put the in-flight state in place; undefined when the node did not accept in time */
  static async open(transport: Transport, port: number, clientId: string, rand: Rand, timeoutMs: number): Promise<FuzzSession | undefined> {
    let conn: RawConn
    try {
      conn = await openRaw(transport, port, timeoutMs * 4)
    } catch {
      return undefined
    }
    const base = `fz/${clientId}`
    const session = new FuzzSession(conn, { clientId, base, unacked: [], unreceived: [], awaitingRel: [] })
    let acked = false
    const prev = conn.onPacket
    conn.onPacket = (p) => {
      if (p.cmd === 'connack') acked = p.returnCode === 0
      prev(p)
    }
    const rel = 1 + int(rand, 65535)
    conn.write(
      Buffer.concat([
        gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: rand() < 0.6, keepalive: 60, clientId }),
        gen({ cmd: 'subscribe', messageId: 1 + int(rand, 65535), subscriptions: [{ topic: `${base}/#`, qos: 2 }] }),
        gen({ cmd: 'publish', topic: `${base}/a`, payload: Buffer.from('q1'), qos: 1, messageId: 1 + int(rand, 65535) }),
        gen({ cmd: 'publish', topic: `${base}/b`, payload: Buffer.from('q2'), qos: 2, messageId: rel }),
        PINGREQ,
      ]),
    )
    const outcome = await session.settle(timeoutMs * 4)
    if (outcome !== 'alive' || !acked) {
      conn.destroy()
      return undefined
    }
    return session
  }

  /** send one case; the session is done unless the outcome is 'alive' */
  async send(bytes: Buffer, timeoutMs: number): Promise<Outcome> {
    this.conn.write(Buffer.concat([bytes, PINGREQ]))
    const o = await this.settle(timeoutMs)
    if (o !== 'alive') this.conn.destroy()
    return o
  }
}

/** a case before CONNECT: mutated CONNECT bytes (and what follows) on a fresh connection */
export async function preConnectCase(transport: Transport, port: number, bytes: Buffer, timeoutMs: number): Promise<Outcome | 'refused'> {
  let conn: RawConn
  try {
    conn = await openRaw(transport, port, timeoutMs * 4)
  } catch {
    return 'refused'
  }
  let pinged!: () => void
  const pong = new Promise<Outcome>((r) => (pinged = () => r('alive')))
  conn.onPacket = (p) => p.cmd === 'pingresp' && pinged()
  conn.write(Buffer.concat([bytes, PINGREQ]))
  let timer: NodeJS.Timeout | undefined
  const o = await Promise.race([pong, conn.closed.then((): Outcome => 'closed'), new Promise<Outcome>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))])
  clearTimeout(timer)
  conn.destroy()
  return o
}
