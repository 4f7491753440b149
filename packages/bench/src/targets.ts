/** Broker URLs: parsing and round-robin assignment of clients to them. */
export type Protocol = 'mqtt' | 'mqtts' | 'ws' | 'wss'

export interface Target {
  protocol: Protocol
  host: string
  port: number
  /** WebSocket path (ws/wss only) */
  path: string
  username?: string
  password?: string
  href: string
}

const DEFAULT_PORTS: Record<Protocol, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 }

export function parseTarget(raw: string): Target {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new Error(`not a URL: "${raw}" (expected mqtt://, mqtts://, ws:// or wss://)`)
  }
  const protocol = u.protocol.replace(/:$/, '')
  if (protocol !== 'mqtt' && protocol !== 'mqtts' && protocol !== 'ws' && protocol !== 'wss') {
    throw new Error(`unsupported scheme in "${raw}" (expected mqtt://, mqtts://, ws:// or wss://)`)
  }
  if (!u.hostname) throw new Error(`no host in "${raw}"`)
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[protocol]
  const isWs = protocol === 'ws' || protocol === 'wss'
  const path = isWs ? (u.pathname && u.pathname !== '/' ? u.pathname + u.search : '/mqtt') : ''
  const t: Target = { protocol, host, port, path, href: raw }
  if (u.username) t.username = decodeURIComponent(u.username)
  if (u.password) t.password = decodeURIComponent(u.password)
  return t
}

/** The URL client `index` uses: clients are spread over `urls` in turn. */
export function roundRobin<T>(urls: readonly T[], index: number): T {
  if (urls.length === 0) throw new Error('no targets to assign')
  return urls[index % urls.length] as T
}

export function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === 'localhost' || host === '::1'
}
