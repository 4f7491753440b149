/**
 * A TCP proxy in front of a real redis-server that can make what Redis sends to ONE named link of
 * a node arrive late: a node names its links (`CLIENT SETNAME culex-<node>-<role>`,
 * cluster/backend.ts), the proxy spots the name in what the link sends first, and while `delayMs`
 * is above 0 it holds each chunk Redis sends to that link that long (in order). With the `sub`
 * link that is a node slow to hear the cluster's notifications (a busy event loop, a backed-up
 * link), without touching the node's code.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export class DelayProxy {
  /** extra latency on what Redis sends to the matching links, ms */
  delayMs = 0
  /** extra latency on what the matching links send to Redis, ms (each chunk after the one naming the link, in order) */
  toRedisMs = 0
  private server?: Server
  private readonly sockets = new Set<Socket>()
  port = 0

  /** `link`: the connection name to slow down, e.g. `culex-jo-a-sub` */
  constructor(
    private readonly redisPort: number,
    private readonly link: string,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect({ port: this.redisPort, host: '127.0.0.1' })
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => {
          this.sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
      }
      let head = ''
      let slow = false
      // chunks held toward Redis, in order, each with the time it may go
      const held: Array<{ at: number; d: Buffer }> = []
      const release = (): void => {
        while (held.length > 0 && held[0]!.at <= Date.now()) upstream.write(held.shift()!.d)
        if (held.length > 0) setTimeout(release, held[0]!.at - Date.now())
      }
      client.on('data', (d: Buffer) => {
        if (!slow && head.length < 4096) {
          head += d.toString('latin1')
          slow = head.includes(this.link)
          return void upstream.write(d)
        }
        if (!slow || (this.toRedisMs <= 0 && held.length === 0)) return void upstream.write(d)
        held.push({ at: Date.now() + this.toRedisMs, d })
        if (held.length === 1) setTimeout(release, this.toRedisMs)
      })
      upstream.on('data', (d) => {
        if (!slow || this.delayMs <= 0) return void client.write(d)
        setTimeout(() => client.write(d), this.delayMs)
      })
    })
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as { port: number }).port
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}
