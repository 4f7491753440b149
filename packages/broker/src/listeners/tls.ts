/**
 * MQTT over TLS terminated by the node itself (optional: behind HAProxy,
 * HAProxy terminates TLS on 8883). With tls_ca set, clients are asked for a
 * certificate; with tls_require_client_cert, one that tls_ca does not verify
 * fails the handshake. With cert_cn_as_username, the authenticate hook takes
 * a verified certificate's CN as the username (auth/authenticate.ts).
 *
 * The connection gates run on the raw TCP socket, before the handshake costs
 * anything; Aedes gets the socket once the handshake is done.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:tls'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'
import { keepHalfOpen, type ConnInfo, type SocketGate } from './tcp.js'

export interface TlsOptions {
  cert: string
  key: string
  ca?: string
  requireClientCert: boolean
  /** handshake timeout (ms) */
  handshakeTimeoutMs: number
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new Error(`${what} ${path}: ${(err as Error).message}`)
  }
}

export function createTlsListener(broker: Aedes, sockets: SocketTracker, opts: TlsOptions, gates: SocketGate[] = []): Server {
  const server = createServer(
    {
      cert: read(opts.cert, 'tls_cert'),
      key: read(opts.key, 'tls_key'),
      ca: opts.ca ? read(opts.ca, 'tls_ca') : undefined,
      requestCert: opts.ca !== undefined,
      rejectUnauthorized: opts.requireClientCert,
      handshakeTimeout: opts.handshakeTimeoutMs,
      minVersion: 'TLSv1.2',
    },
    (socket) => {
      socket.on('error', () => socket.destroy())
      // the peer's FIN (close_notify) closes the connection through Aedes, as on TCP [MQTT-4.1.0-2]
      broker.handle(keepHalfOpen(socket))
    },
  )
  server.on('connection', (raw) => {
    sockets.track(raw)
    raw.on('error', () => raw.destroy())
    const info: ConnInfo = {}
    let i = 0
    // synchronous gates only (limits): the handshake goes on unless one destroyed the socket
    const next = (): void => {
      const gate = gates[i++]
      if (gate) gate(raw, info, next)
    }
    next()
  })
  server.on('tlsClientError', () => {})
  return server
}
