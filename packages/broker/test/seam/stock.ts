/**
 * A stock Aedes broker (no Culex concern installed) on a loopback port, for the seam's
 * contract tests: each test applies the one seam function it checks and drives the broker
 * with raw MQTT clients (helpers/raw-mqtt.ts).
 */
import { createServer, type Server } from 'node:net'
import { once } from 'node:events'
import { Aedes, type AedesOptions, type Client } from 'aedes'

export interface Stock {
  broker: Aedes
  port: number
  /** the Clients broker.handle returned, in connection order */
  clients: Client[]
  close(): Promise<void>
}

const open = new Set<Stock>()

export async function stockBroker(opts: AedesOptions = {}, before?: (broker: Aedes) => void): Promise<Stock> {
  const broker = await Aedes.createBroker(opts)
  before?.(broker)
  const clients: Client[] = []
  // broker.handle read at call time, as Culex's listeners do
  const server: Server = createServer((socket) => void clients.push(broker.handle(socket)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const stock: Stock = {
    broker,
    port,
    clients,
    async close() {
      open.delete(stock)
      server.close()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    },
  }
  open.add(stock)
  return stock
}

export async function closeStock(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()))
}

/** resolves with the value `check` returns once it is not undefined (polls every 5 ms) */
export async function eventually<T>(check: () => T | undefined, ms = 3000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
