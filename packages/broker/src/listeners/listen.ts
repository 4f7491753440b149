import type { Server as NetServer, AddressInfo } from 'node:net'

/** listen and resolve with the bound port (port 0 = any free port) */
export function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** stop accepting; resolves once the server no longer listens (open sockets are handled elsewhere) */
export function stopAccepting(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
  })
}
