/**
 * The dashboard at /dashboard/ on every node (and through HAProxy's API port): a static page
 * (packages/broker/dashboard/) that calls the REST API with the admin token the user types once
 * (kept in sessionStorage). No bundler and no CDN: its libraries are served from node_modules,
 * as shipped by their packages: Preact + htm (htm's standalone build), uPlot, and MQTT.js'
 * browser build for the live topic view over WebSocket. The files hold no data, so they need no
 * token.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

const require = createRequire(import.meta.url)

/** the folder of an installed package (some do not export their package.json) */
function packageDir(name: string): string {
  const main = require.resolve(name)
  const marker = `${sep}node_modules${sep}${name}${sep}`
  const at = main.lastIndexOf(marker)
  return at >= 0 ? main.slice(0, at + marker.length - 1) : dirname(main)
}

const PAGE_DIR = fileURLToPath(new URL('../../../dashboard/', import.meta.url))

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

/** url path under /dashboard/ -> file */
function files(): Map<string, string> {
  const m = new Map<string, string>()
  for (const f of ['index.html', 'app.js', 'api.js', 'views.js', 'live.js', 'style.css']) m.set(f, join(PAGE_DIR, f))
  m.set('vendor/htm-preact.js', join(packageDir('htm'), 'preact', 'standalone.module.js'))
  m.set('vendor/uplot.js', join(packageDir('uplot'), 'dist', 'uPlot.esm.js'))
  m.set('vendor/uplot.css', join(packageDir('uplot'), 'dist', 'uPlot.min.css'))
  m.set('vendor/mqtt.min.js', join(packageDir('mqtt'), 'dist', 'mqtt.min.js'))
  return m
}

export function dashboardRoutes(app: FastifyInstance): void {
  const known = files()
  const cache = new Map<string, Buffer>()
  const send = (name: string) => {
    const path = known.get(name)
    if (!path) return undefined
    let body = cache.get(name)
    if (!body) cache.set(name, (body = readFileSync(path)))
    return { body, type: TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream' }
  }
  app.get('/dashboard', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/dashboard/'))
  app.get('/dashboard/*', { schema: { hide: true } }, async (req, reply) => {
    const f = send((req.params as { '*': string })['*'] || 'index.html')
    if (!f) return reply.status(404).send({ error: 'not found' })
    return reply.header('content-type', f.type).header('cache-control', 'no-cache').send(f.body)
  })
}
