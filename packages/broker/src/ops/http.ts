/** Ops HTTP server: /healthz, /readyz, /metrics (+ routes added by other concerns). */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Readiness } from './readiness.js'

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

export function createOpsServer(readiness: Readiness, registry: Registry, extra: Map<string, Route> = new Map()): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const route = extra.get(`${req.method} ${path}`)
    if (route) {
      Promise.resolve(route(req, res)).catch((err: Error) => send(res, 500, { error: err.message }))
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' })
    if (path === '/healthz') return send(res, 200, { status: 'ok' })
    if (path === '/readyz') {
      const { ready, reasons } = readiness.status()
      return send(res, ready ? 200 : 503, ready ? { status: 'ready' } : { status: 'not ready', reasons })
    }
    if (path === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType })
          res.end(text)
        })
        .catch((err: Error) => send(res, 500, { error: err.message }))
      return
    }
    send(res, 404, { error: 'not found' })
  })
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
