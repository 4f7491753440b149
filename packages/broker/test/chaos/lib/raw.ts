/** A bare MQTT 3.1.1 client over TCP (mqtt-packet): it acknowledges nothing unless told, to hold messages in flight. */
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket, { type Packet, type IPublishPacket } from 'mqtt-packet'
import { waitFor } from '../../helpers/wait.js'

export class RawClient {
  readonly packets: Packet[] = []
  private constructor(private readonly sock: Socket) {}

  /** connect and wait for CONNACK; resolves with the client and the CONNACK's session present flag */
  static async connect(port: number, clientId: string, clean: boolean): Promise<{ client: RawClient; sessionPresent: boolean }> {
    const sock = netConnect(port, '127.0.0.1')
    await once(sock, 'connect')
    const c = new RawClient(sock)
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (p: Packet) => c.packets.push(p))
    sock.on('data', (d: Buffer) => parser.parse(d))
    sock.on('error', () => {})
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 60 })
    const connack = (await c.next((p) => p.cmd === 'connack')) as { returnCode: number; sessionPresent: boolean }
    if (connack.returnCode !== 0) throw new Error(`CONNACK ${connack.returnCode}`)
    return { client: c, sessionPresent: connack.sessionPresent }
  }

  send(p: Packet | Record<string, unknown>): void {
    this.sock.write(mqttPacket.generate(p as Packet))
  }

  async next(pred: (p: Packet) => boolean, ms = 10_000): Promise<Packet> {
    let found: Packet | undefined
    await waitFor(() => (found = this.packets.find(pred)) !== undefined, ms, 'a packet')
    return found!
  }

  publishes(): IPublishPacket[] {
    return this.packets.filter((p): p is IPublishPacket => p.cmd === 'publish')
  }

  /** the connection drops without DISCONNECT (a network failure) */
  async drop(): Promise<void> {
    this.sock.destroy()
    if (!this.sock.closed) await once(this.sock, 'close')
  }
}
