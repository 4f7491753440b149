/** Renders haproxy/haproxy.cfg.template for a local cluster and checks it with `haproxy -c`. */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { which } from './procs.js'

const run = promisify(execFile)

export interface HaproxyNode {
  id: string
  host: string
  mqtt: number
  ws: number
  http: number
}

export interface HaproxyVars {
  bind: string
  mqttPort: number
  tlsPort: number
  wssPort: number
  statsPort: number
  /** HTTPS: the admin API and dashboard */
  apiPort: number
  /** combined certificate + key */
  pem: string
  nodes: HaproxyNode[]
  /** the nodes' keepalive_max_s; HAProxy timeouts are twice it */
  keepaliveMaxS: number
  checkInterMs?: number
}

/** HAProxy wants file names without spaces or quotes the simple way */
function quoted(path: string): string {
  return `"${path.replace(/(["\\])/g, '\\$1')}"`
}

export function renderHaproxyConfig(template: string, v: HaproxyVars): string {
  const servers = (port: 'mqtt' | 'ws'): string =>
    v.nodes.map((n) => `    server ${n.id} ${n.host}:${n[port]} check port ${n.http}`).join('\n')
  const values: Record<string, string> = {
    bind: v.bind,
    mqtt_port: String(v.mqttPort),
    tls_port: String(v.tlsPort),
    wss_port: String(v.wssPort),
    stats_port: String(v.statsPort),
    api_port: String(v.apiPort),
    pem: quoted(v.pem),
    keepalive_max_s: String(v.keepaliveMaxS),
    timeout_s: String(Math.max(60, 2 * v.keepaliveMaxS)),
    check_inter_ms: String(v.checkInterMs ?? 1000),
    mqtt_servers: servers('mqtt'),
    ws_servers: servers('ws'),
    ops_servers: v.nodes.map((n) => `    server ${n.id} ${n.host}:${n.http}`).join('\n'),
  }
  return template.replace(/\{\{(\w+)\}\}/g, (m, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`haproxy template: unknown placeholder ${m}`)
    return value
  })
}

export function renderHaproxyFile(templatePath: string, v: HaproxyVars): string {
  return renderHaproxyConfig(readFileSync(templatePath, 'utf8'), v)
}

/** `haproxy -c -f file`: resolves when valid, rejects with HAProxy's own words */
export async function checkHaproxyConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await run(which('haproxy') ?? 'haproxy', ['-c', '-q', '-f', file], { env })
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string }
    throw new Error(`haproxy -c -f ${file} failed:\n${e.stderr || e.stdout || e.message}`)
  }
}
