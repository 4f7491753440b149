/**
 * The one options schema of a Culex node (Fastify/pino style: a tiny core,
 * every option here, validated once at start-up).
 *
 * Each key appears three ways: the config-file key (snake_case), the
 * environment variable (CULEX_ + upper case) and the CLI flag (--kebab-case).
 * `KEYS` is the single table the loader, the CLI and the README all derive from.
 */
import { z } from 'zod'

const port = z.coerce.number().int().min(0).max(65535)
const host = z.string().min(1)
const positiveInt = z.coerce.number().int().min(1)
const nonNegativeInt = z.coerce.number().int().min(0)
export const bool = z.preprocess((v) => {
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase()
    if (['true', '1', 'yes', 'on'].includes(s)) return true
    if (['false', '0', 'no', 'off'].includes(s)) return false
  }
  return v
}, z.boolean())
const redisUrl = z.string().refine((s) => {
  try {
    const u = new URL(s)
    return u.protocol === 'redis:' || u.protocol === 'rediss:'
  } catch {
    return false
  }
}, 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379')
const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string().min(1)),
)

export interface KeySpec {
  /** config file key */
  key: string
  /** zod type of the value */
  type: z.ZodType
  default?: unknown
  /** what the key means (README table) */
  doc: string
  /** shown instead of the default in the README */
  defaultDoc?: string
}

export const KEYS = [
  { key: 'host', type: host, default: '0.0.0.0', doc: 'Address the MQTT and WebSocket listeners bind to' },
  { key: 'mqtt_port', type: port, default: 1883, doc: 'MQTT over TCP port (0 = any free port)' },
  { key: 'ws_port', type: port, default: 8080, doc: 'MQTT over WebSocket port (0 = any free port)' },
  { key: 'ws_path', type: z.string().startsWith('/'), default: '/mqtt', doc: 'HTTP path of the WebSocket listener' },
  { key: 'http_host', type: host.optional(), doc: 'Address of the ops HTTP server (health, metrics, admin)', defaultDoc: 'same as host' },
  { key: 'http_port', type: port, default: 9100, doc: 'Ops HTTP port: /healthz /readyz /metrics' },
  { key: 'redis_url', type: redisUrl.optional(), doc: 'Redis URL; set = cluster mode (shared sessions, retained, routing)', defaultDoc: 'unset (single node, in memory)' },
  { key: 'node_id', type: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1-64)').optional(), doc: 'Node id in logs, metrics and the cluster registry', defaultDoc: 'hostname-pid' },
  { key: 'log_level', type: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', doc: 'pino log level' },
  { key: 'grace_period_ms', type: positiveInt, default: 10000, doc: 'Shutdown grace period on SIGTERM/SIGINT before a forced exit' },
  { key: 'max_client_id_length', type: z.coerce.number().int().min(1).max(65535), default: 65535, doc: 'Longest accepted client id (Aedes default is 23)' },
  { key: 'keepalive_max_s', type: nonNegativeInt.max(65535), default: 0, doc: 'Highest keepalive a client may ask for, in seconds (0 = any). Keep it below the HAProxy client/server timeouts' },
  { key: 'connect_timeout_ms', type: positiveInt, default: 30000, doc: 'Close sockets that send no CONNECT within this time' },
  { key: 'heartbeat_interval_ms', type: positiveInt, default: 5000, doc: 'Cluster heartbeat interval; a node is dead after 3 missed beats' },
  { key: 'will_delay_ms', type: nonNegativeInt, default: 0, doc: 'Extra wait after a dead node\'s heartbeat lapses before its clients\' wills are published' },
  { key: 'queue_limit', type: positiveInt, default: 42, doc: 'Packets a client may queue while its CONNECT is processed' },
  { key: 'trusted_proxies', type: list, default: [], doc: 'Addresses allowed to send a PROXY protocol header (comma separated); any other sender is refused' },
] as const satisfies readonly KeySpec[]

type KeyOf<T> = T extends { key: infer K } ? K : never
type Entry = (typeof KEYS)[number]

function shapeOf(): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {}
  for (const k of KEYS as readonly KeySpec[]) {
    shape[k.key] = 'default' in k && k.default !== undefined ? k.type.default(k.default as never) : k.type
  }
  return shape
}

export const configSchema = z.strictObject(shapeOf()) as unknown as z.ZodType<CulexConfig>

export type CulexConfig = {
  [E in Entry as KeyOf<E>]: E extends { default: unknown } ? z.output<E['type']> : z.output<E['type']> | undefined
}

/** CULEX_MQTT_PORT for mqtt_port */
export const envName = (key: string): string => `CULEX_${key.toUpperCase()}`
/** --mqtt-port for mqtt_port */
export const flagName = (key: string): string => `--${key.replace(/_/g, '-')}`
