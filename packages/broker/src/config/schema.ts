/**
 * The one options schema of a Culex node (Fastify/pino style: a tiny core,
 * every option here, validated once at start-up).
 *
 * Each key appears three ways: the config-file key (snake_case), the
 * environment variable (CULEX_ + upper case) and the CLI flag (--kebab-case).
 * `KEYS` is the single table the loader, the CLI and the README all derive from.
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { STRATEGIES } from '../shared/strategy.js'
import { parseHostPort } from '../cluster/redis-connect.js'

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

function isAddressOrSubnet(s: string): boolean {
  const [addr, bits, extra] = s.split('/')
  const family = isIP(addr ?? '')
  if (!family || extra !== undefined) return false
  if (bits === undefined) return true
  const n = Number(bits)
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128)
}

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
  /** a secret (token, password): redacted when the configuration is printed */
  secret?: boolean
}

/** a topic name prefix with %c for the client id: no wildcards, no NUL, not a `$` topic [MQTT-4.7.1-1] [MQTT-4.7.2-1] */
const responseInformation = z
  .string()
  .max(1024)
  .refine((s) => !/[+#]/.test(s) && !s.includes('\u0000'), 'must not contain + # or NUL (it is a topic name prefix)')
  .refine((s) => !s.startsWith('$'), 'must not start with $ (reserved topics)')
  .refine((s) => !/%(?!c)/.test(s), 'the only placeholder is %c (client id)')

export const KEYS = [
  { key: 'host', type: host, default: '0.0.0.0', doc: 'Address the MQTT and WebSocket listeners bind to' },
  { key: 'mqtt_port', type: port, default: 1883, doc: 'MQTT over TCP port (0 = any free port)' },
  { key: 'ws_port', type: port, default: 8080, doc: 'MQTT over WebSocket port (0 = any free port)' },
  { key: 'ws_path', type: z.string().startsWith('/'), default: '/mqtt', doc: 'HTTP path of the WebSocket listener' },
  { key: 'http_host', type: host.optional(), doc: 'Address of the ops HTTP server (health, metrics, admin)', defaultDoc: 'same as host' },
  { key: 'http_port', type: port, default: 9100, doc: 'Ops HTTP port: /healthz /readyz /metrics' },
  { key: 'redis_url', type: redisUrl.optional(), doc: 'Redis URL; set = cluster mode (shared sessions, retained, routing)', defaultDoc: 'unset (single node, in memory)' },
  // high availability (issue 13): a primary with replicas under Sentinel; docs/cluster.md "High availability"
  { key: 'redis_sentinels', type: list.refine((a) => a.every((s) => parseHostPort(s) !== undefined), 'each entry must be host:port, e.g. 127.0.0.1:26379'), default: [], doc: 'Redis Sentinel addresses (host:port, comma separated); set = cluster mode on the primary they name (redis_master_name), followed across failovers. Excludes redis_url' },
  { key: 'redis_master_name', type: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1-64)').optional(), doc: 'Name of the primary the sentinels monitor (their `sentinel monitor NAME ...`); needed with redis_sentinels', defaultDoc: 'unset' },
  { key: 'redis_sentinel_password', type: z.string().min(1).optional(), doc: 'Password of the sentinels (their requirepass)', defaultDoc: 'unset', secret: true },
  { key: 'redis_password', type: z.string().min(1).optional(), doc: 'Password of the Redis servers under Sentinel (with redis_url, put it in the URL)', defaultDoc: 'unset', secret: true },
  { key: 'redis_min_replicas_acked', type: nonNegativeInt.max(16).optional(), doc: 'Replicas that must have a QoS 1/2 message (Redis WAIT, once per batch) before its PUBACK/PUBREC leaves, so a failover cannot lose it; 0 = do not wait', defaultDoc: '1 with redis_sentinels, else 0' },
  { key: 'redis_replicas_ack_timeout_ms', type: positiveInt.max(60000), default: 500, doc: 'Longest wait for redis_min_replicas_acked; then the acknowledgement leaves anyway, counted in culex_replica_ack_timeouts_total and logged once per episode' },
  { key: 'node_id', type: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1-64)').optional(), doc: 'Node id in logs, metrics and the cluster registry', defaultDoc: 'hostname-pid' },
  { key: 'log_level', type: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', doc: 'pino log level' },
  { key: 'grace_period_ms', type: positiveInt, default: 10000, doc: 'Shutdown grace period on SIGTERM/SIGINT (after drain_ms) before a forced exit' },
  { key: 'drain_ms', type: nonNegativeInt, default: 0, doc: 'On SIGTERM, answer /readyz 503 this long before disconnecting clients, so a load balancer sends new clients elsewhere first (SIGINT stops at once). Behind HAProxy: above its check inter x (fall + 1)' },
  { key: 'max_client_id_length', type: z.coerce.number().int().min(1).max(65535), default: 65535, doc: 'Longest accepted client id (Aedes default is 23)' },
  { key: 'keepalive_max_s', type: nonNegativeInt.max(65535), default: 0, doc: 'Keepalive cap, in seconds (0 = none): a client asking for more, or for 0, is accepted and held to the cap (dropped after 1.5 x the cap of silence), as EMQX does. Keep 1.5 x it below the HAProxy client/server timeouts' },
  { key: 'connect_timeout_ms', type: positiveInt, default: 30000, doc: 'Close sockets that send no CONNECT within this time' },
  { key: 'heartbeat_interval_ms', type: positiveInt, default: 5000, doc: 'Cluster heartbeat interval; a node is dead after 3 missed beats' },
  { key: 'will_delay_ms', type: nonNegativeInt, default: 0, doc: 'Extra wait after a dead node\'s heartbeat lapses before its clients\' wills are published' },
  { key: 'will_sweep_interval_ms', type: positiveInt, default: 1000, doc: 'Cluster: how often one node (under a Redis lock) looks for wills of dead nodes, delayed wills that are due and expired sessions; a will of a dead node goes out at most about 3 heartbeats + will_delay_ms + 4 sweeps after the node\'s last heartbeat, a delayed will or an expired session at most about a sweep late' },
  { key: 'session_expiry_max_s', type: z.coerce.number({ error: 'must be a number of seconds' }).int('must be a whole number of seconds').min(1, 'must be at least 1 second (4294967295 = no cap)').max(0xffffffff, 'must be at most 4294967295 (= no cap)'), default: 0xffffffff, doc: 'Longest Session Expiry Interval an MQTT 5 client gets, in seconds (as Mosquitto\'s and EMQX\'s max session expiry): asking for more, or for 4294967295 (never), it is held to this and told so in the CONNACK. 4294967295 = no cap. MQTT 3.1.1 persistent sessions never expire, as before' },
  { key: 'topic_alias_out_max', type: nonNegativeInt.max(65535), default: 0, doc: 'MQTT 5: Topic Aliases Culex uses on the PUBLISHes it sends a client, per connection (at most the Topic Alias Maximum of the client\'s CONNECT): the first message of a topic carries the topic, the later ones only the alias. 0 = none (the default; clients get the whole topic every time)' },
  { key: 'queue_limit', type: positiveInt, default: 42, doc: 'Packets a client may queue while its CONNECT is processed' },
  { key: 'trusted_proxies', type: list.refine((a) => a.every(isAddressOrSubnet), 'each entry must be an IP address or a CIDR subnet, e.g. 127.0.0.1 or 172.28.0.0/16'), default: [], doc: 'Addresses allowed to send a PROXY protocol header (comma separated); any other sender is refused' },
  // security (issue 5): see docs/security.md
  { key: 'allow_anonymous', type: bool.optional(), doc: 'Let clients connect without a username. Unset = auto: false once any user exists or in cluster mode (the start-up log says which)', defaultDoc: 'auto' },
  { key: 'users_file', type: z.string().min(1).optional(), doc: 'Users file of a single node (`culex user add --users-file`), reloaded when it changes. In cluster mode users live in Redis', defaultDoc: 'unset (no users)' },
  { key: 'acl_file', type: z.string().min(1).optional(), doc: 'ACL rules (YAML, see docs/security.md), reloaded when the file changes; set = deny what no rule allows. In cluster mode the file is pushed to Redis for every node', defaultDoc: 'unset (no ACL)' },
  { key: 'admin_token', type: z.string().min(16, 'must be at least 16 characters').optional(), doc: 'Bearer token for the admin REST API (/api/v1), the dashboard and /admin/ on the ops HTTP port; unset = all off (HTTP publish with an MQTT user\'s credentials still works)', defaultDoc: 'unset', secret: true },
  { key: 'max_connections', type: nonNegativeInt, default: 10000, doc: 'Open MQTT connections per node (TCP + WebSocket); 0 = no limit' },
  { key: 'max_connects_per_s_per_ip', type: nonNegativeInt, default: 100, doc: 'New connections per second per source address (bursts of twice as many); 0 = no limit' },
  { key: 'auth_fail_threshold', type: nonNegativeInt, default: 5, doc: 'Failed logins per source address, and per username, before backoff starts; 0 = no backoff' },
  { key: 'auth_backoff_ms', type: positiveInt, default: 1000, doc: 'First failed-login backoff; doubles with each further failure' },
  { key: 'auth_backoff_max_ms', type: positiveInt, default: 60000, doc: 'Longest failed-login backoff' },
  { key: 'max_packet_size', type: z.coerce.number().int().min(64).max(268435455), default: 1048576, doc: 'Largest packet (remaining length, bytes) a client may send; a larger one closes its connection' },
  { key: 'max_topic_length', type: z.coerce.number().int().min(1).max(65535), default: 1024, doc: 'Longest topic name or filter (characters); longer publishes close the connection, longer subscriptions get 0x80' },
  { key: 'max_topic_levels', type: z.coerce.number().int().min(1).max(100), default: 32, doc: 'Most topic levels in a topic or filter (Aedes caps this at 100)' },
  { key: 'max_publishes_per_s', type: nonNegativeInt, default: 0, doc: 'PUBLISH packets per second one client may send (bursts of twice as many), as EMQX\'s per-connection message quota; one over it is refused, not delivered: an MQTT 5 client gets PUBACK/PUBREC 0x97 Quota exceeded for a QoS 1/2 message (its QoS 0 message is dropped) and stays connected, an MQTT 3.1.1 client is disconnected (its PUBACK cannot refuse). Counted in culex_publish_quota_exceeded_total. 0 = no limit' },
  { key: 'max_inflight', type: nonNegativeInt, default: 1000, doc: 'Inbound QoS 2 messages per client awaiting PUBREL; one more closes the connection (0 = no limit)' },
  { key: 'max_outgoing_inflight', type: nonNegativeInt, default: 100, doc: 'QoS 1/2 messages sent to one client and not yet acknowledged (PUBACK/PUBCOMP), as Mosquitto\'s max_inflight_messages; further ones wait in the node, in order, and hold the publishers like a full socket (0 = no limit)' },
  { key: 'max_queued', type: positiveInt, default: 1000, doc: 'Messages waiting for one client while its socket is backed up (it does not read); beyond it QoS 0 is dropped (counted) and a QoS 1/2 subscriber is disconnected' },
  { key: 'max_queued_bytes', type: positiveInt, default: 16777216, doc: 'Bytes waiting to be written to one client; beyond it as max_queued' },
  { key: 'delivery_buffer_bytes', type: z.coerce.number().int().min(65536), default: 1048576, doc: 'Bytes a node holds for delivery to its clients (written to their sockets, not yet taken by the kernel) before it stops reading publishers\' sockets, until half of it is left; in a cluster also what a node takes in from its peers before it asks them to hold their publishers. Bounds memory and latency under overload' },
  { key: 'delivery_buffer_messages', type: positiveInt, default: 1000, doc: 'QoS 1/2 deliveries a node keeps waiting for room in its clients\' in-flight windows (max_outgoing_inflight) before it stops reading publishers\' sockets, until half of it is left: bounds the queue, and so the latency, that subscribers acknowledging slower than their publishers publish build up (1,000 messages at 100,000/s is 10 ms); with delivery_buffer_bytes for large messages' },
  { key: 'qos0_client_buffer_bytes', type: z.coerce.number().int().min(1024), default: 262144, doc: 'Bytes waiting for one client beyond which QoS 0 messages for it are dropped (culex_messages_dropped_total{reason="subscriber_behind"}) rather than holding every publisher to its pace; QoS 1/2 messages wait' },
  { key: 'drain_timeout_ms', type: nonNegativeInt, default: 60000, doc: 'Disconnect a client whose socket accepts no data for this long (0 = never)' },
  { key: 'tls_port', type: port.optional(), doc: 'MQTT over TLS terminated by the node itself (unset = off; behind HAProxy, HAProxy terminates TLS)', defaultDoc: 'unset' },
  { key: 'tls_cert', type: z.string().min(1).optional(), doc: 'PEM certificate (chain) of the node TLS listener', defaultDoc: 'unset' },
  { key: 'tls_key', type: z.string().min(1).optional(), doc: 'PEM private key of the node TLS listener', defaultDoc: 'unset' },
  { key: 'tls_ca', type: z.string().min(1).optional(), doc: 'PEM CA(s) client certificates are verified against; set = ask clients for a certificate (mutual TLS)', defaultDoc: 'unset' },
  { key: 'tls_require_client_cert', type: bool, default: false, doc: 'Refuse the TLS handshake of a client without a certificate tls_ca verifies' },
  { key: 'cert_cn_as_username', type: bool, default: false, doc: 'A verified client certificate\'s CN is the username (node TLS listener, or HAProxy via PROXY v2 TLV); no password needed' },
  // MQTT 5 (issue 11): broker/mqtt5.ts
  { key: 'puback_no_subscribers', type: bool, default: true, doc: 'MQTT 5: PUBACK/PUBREC 0x10 (No matching subscribers) for a QoS 1/2 message no subscription anywhere matched. Keeps every distinct topic filter of the cluster in memory on each node (about 720 bytes each) and, in a cluster, announces a node\'s new filters through Redis; false = always 0x00, none of that kept' },
  { key: 'response_information', type: responseInformation, default: 'culex/response/%c', doc: 'Response Information an MQTT 5 client that sets Request Response Information gets in its CONNACK: a topic prefix for its responses, %c = its client id (not sent for a client id with + # or /). Empty (config file or flag) = never sent. Using it needs an ACL rule where an ACL is set, e.g. `allow: pubsub` on `culex/response/%c/#`' },
  // shared subscriptions (issue 12): see shared/ and the README
  { key: 'shared_strategy', type: z.enum(STRATEGIES), default: 'round_robin', doc: 'How this node picks the one member of a `$share/<group>/<filter>` group that gets a message it receives: round_robin, random, local_first (a member on this node if any), hash_clientid or hash_topic (one publisher\'s or one topic\'s messages stay on one member)' },
  { key: 'shared_queue_limit', type: positiveInt, default: 100000, doc: 'QoS 1/2 messages kept for a group whose members are all offline persistent sessions, until one comes back; beyond it the oldest are dropped (culex_shared_dropped_total)' },
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

/** settings that are valid one by one but not together; the issue names the key to change */
function crossCheck(c: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const problem = (key: string, message: string): void => void ctx.addIssue({ code: 'custom', path: [key], message })
  const sentinels = (c.redis_sentinels as string[] | undefined)?.length ?? 0
  if (sentinels > 0 && c.redis_url !== undefined) problem('redis_sentinels', 'set either redis_url (one Redis server) or redis_sentinels (a primary under Sentinel), not both')
  if (sentinels > 0 && c.redis_master_name === undefined) problem('redis_master_name', 'needed with redis_sentinels: the name the sentinels monitor the primary under')
  for (const k of ['redis_master_name', 'redis_sentinel_password'] as const) {
    if (sentinels === 0 && c[k] !== undefined) problem(k, 'only means something with redis_sentinels')
  }
  if (sentinels === 0 && c.redis_password !== undefined) problem('redis_password', c.redis_url !== undefined ? 'with redis_url, put the password in the URL (redis://:PASSWORD@host:6379)' : 'only means something with redis_sentinels')
  if (sentinels === 0 && c.redis_url === undefined && ((c.redis_min_replicas_acked as number | undefined) ?? 0) > 0) {
    problem('redis_min_replicas_acked', 'needs Redis (redis_url or redis_sentinels): a single node in memory has no replicas')
  }
}

export const configSchema = z.strictObject(shapeOf()).superRefine(crossCheck) as unknown as z.ZodType<CulexConfig>

/** redis_min_replicas_acked, its default resolved: 1 under Sentinel, else 0 */
export const minReplicasAcked = (c: CulexConfig): number => c.redis_min_replicas_acked ?? (c.redis_sentinels.length > 0 ? 1 : 0)

/** cluster mode: Redis set one way or the other */
export const clusterMode = (c: CulexConfig): boolean => c.redis_url !== undefined || c.redis_sentinels.length > 0

export type CulexConfig = {
  [E in Entry as KeyOf<E>]: E extends { default: unknown } ? z.output<E['type']> : z.output<E['type']> | undefined
}

/** CULEX_MQTT_PORT for mqtt_port */
export const envName = (key: string): string => `CULEX_${key.toUpperCase()}`
/** --mqtt-port for mqtt_port */
export const flagName = (key: string): string => `--${key.replace(/_/g, '-')}`
