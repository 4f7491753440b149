/**
 * Admin endpoints on the ops HTTP server, for operators and scripts:
 *
 *   GET  /admin/security              allow_anonymous, user count, ACL on/off, limits state
 *   POST /admin/reload                re-read users and ACL now
 *   POST /admin/disconnect?client=ID  close one client's connection
 *
 * Every one needs `Authorization: Bearer <admin_token>`; without an
 * admin_token configured they answer 403. The token is compared in constant
 * time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Route } from '../ops/http.js'

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export function tokenMatches(expected: string | undefined, header: string | undefined): boolean {
  if (!expected || !header) return false
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!m) return false
  return timingSafeEqual(digest(expected), digest(m[1]!))
}

export interface AdminActions {
  status(): Record<string, unknown>
  reload(): Promise<void>
  /** true when such a client was connected */
  disconnect(clientId: string): boolean
}

export function adminRoutes(token: string | undefined, actions: AdminActions): Map<string, Route> {
  const guard =
    (route: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Route =>
    async (req, res) => {
      if (!token) return send(res, 403, { error: 'admin endpoints are off: set admin_token' })
      if (!tokenMatches(token, req.headers.authorization)) {
        res.setHeader('www-authenticate', 'Bearer')
        return send(res, 401, { error: 'admin token required' })
      }
      await route(req, res)
    }
  return new Map<string, Route>([
    ['GET /admin/security', guard((_req, res) => send(res, 200, actions.status()))],
    [
      'POST /admin/reload',
      guard(async (_req, res) => {
        await actions.reload()
        send(res, 200, actions.status())
      }),
    ],
    [
      'POST /admin/disconnect',
      guard((req, res) => {
        const id = new URL(req.url ?? '/', 'http://x').searchParams.get('client')
        if (!id) return send(res, 400, { error: 'client=<id> required' })
        const found = actions.disconnect(id)
        send(res, found ? 200 : 404, found ? { disconnected: id } : { error: 'no such client on this node' })
      }),
    ],
  ])
}
