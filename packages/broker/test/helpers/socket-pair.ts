/** connected loopback TCP socket pairs for tests of socket-level code; `closeSocketPairs()` destroys them */
import { once } from 'node:events'
import { createServer, connect as netConnect, type Socket } from 'node:net'

const sockets: Socket[] = []

/** [the accepted (server) side, the client side] */
export async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = netConnect((server.address() as { port: number }).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [Socket]
  await once(client, 'connect')
  server.close()
  sockets.push(client, accepted)
  return [accepted, client]
}

export function closeSocketPairs(): void {
  for (const s of sockets.splice(0)) s.destroy()
}
