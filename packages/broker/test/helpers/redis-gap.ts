/**
 * The "Redis restart under load" scenario (issue 8, bug 2), shared by the short test in
 * `npm test` and the long run (`npm run test:redis-gap:long`, for the chaos suite):
 * two nodes on a real redis-server with AOF, QoS 1 publishers on B with sequence numbers in
 * their payloads, a clean and a persistent QoS 1 subscriber on A; redis-server is killed with
 * SIGKILL and started again with the same arguments, as often as asked; then every message
 * acknowledged to a publisher (PUBACK) is looked for at every subscriber.
 */
import { execFileSync } from 'node:child_process'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import { RESEND_WAIT_MS } from '../../src/cluster/bus-order.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep, startNode, startRedis, waitFor, type TestNode, type TestRedis } from './cluster-procs.js'
import { mqttConnect } from './cluster-mqtt.js'

export interface GapOptions {
  /** how long the publishers run */
  durationMs: number
  /** Redis kills, spread evenly over the run */
  kills: number
  /** how long Redis stays dead each time */
  downMs: number
  /**
   * every other kill (the first included), A is frozen (SIGSTOP) until B is ready again and has
   * published for this long: B's messages then go out while A's subscriber link has not
   * subscribed again, for sure rather than by chance (0: never)
   */
  stallMs?: number
  /**
   * Redis is not killed: each "kill" only freezes A (SIGSTOP) for `stallMs`, longer than the bus
   * takes a silent node for dead (bus-keep.ts); halfway, Redis drops A's subscriber link
   * (`CLIENT KILL`, as its `client-output-buffer-limit pubsub` would for a large backlog)
   */
  freezeOnly?: boolean
  /** Redis is not killed: each "kill" freezes redis-server (SIGSTOP) for `downMs`, its connections kept */
  freezeRedis?: boolean
  /**
   * with freezeOnly: the moment A asks B for the batches it missed (`resend` on the presence
   * channel), A is frozen again and Redis killed and restarted, so that the request or B's answer
   * is lost with it; A stays frozen until its request has timed out (RESEND_WAIT_MS) and B is back
   */
  loseResend?: boolean
  publishers: number
  /** messages per second, all publishers together */
  rate: number
  /** QoS 1 messages a publisher has in flight at most */
  window?: number
}

export interface SubscriberReport {
  /** acknowledged messages this subscriber never got */
  lost: number
  /** copies beyond the first */
  duplicated: number
  /** messages that came after a later one of the same publisher [MQTT-4.6.0-6] */
  outOfOrder: number
}

export interface GapReport {
  acknowledged: number
  published: number
  /** messages published per second, all publishers together */
  rate: number
  /** per subscriber (clean, persistent) */
  subscribers: Record<string, SubscriberReport>
  /** ms from each Redis restart until both nodes answered /readyz 200 again */
  recoveryMs: number[]
  /** freezeRedis: per freeze, ms from its start until node A answered /readyz 503 (null: never) */
  notReadyWhileFrozenMs?: Array<number | null>
  /** times B held batches until A had them (its 'cluster bus: held' log lines) */
  held: Array<{ batches: number; released: number; ms: number }>
  /** messages the persistent session got again from its Redis queue when it reconnected at the end */
  requeued: number
  /** 'cluster bus error' log lines of both nodes (batches released or given up, Redis errors) */
  busErrors: string[]
}

interface Seen {
  /** publisher -> seq -> copies */
  copies: Map<string, Map<number, number>>
  last: Map<string, number>
  outOfOrder: number
  /** when the last message came (ms since the epoch) */
  lastAt: number
}

function watch(client: MqttClient): Seen {
  const seen: Seen = { copies: new Map(), last: new Map(), outOfOrder: 0, lastAt: Date.now() }
  client.on('message', (_topic, payload) => {
    seen.lastAt = Date.now()
    const [pub, s] = payload.toString().split(':')
    const seq = Number(s)
    let m = seen.copies.get(pub!)
    if (!m) seen.copies.set(pub!, (m = new Map()))
    const n = m.get(seq) ?? 0
    m.set(seq, n + 1)
    if (n === 0) {
      if (seq < (seen.last.get(pub!) ?? -1)) seen.outOfOrder++
      else seen.last.set(pub!, seq)
    }
  })
  return seen
}

/** no message at all for this long while some acknowledged ones are missing: they are lost */
const LOST_QUIET_MS = 3000
/** no message for this long after the last one: no copy is on its way */
const COPIES_QUIET_MS = 300

export async function runRedisGap(opts: GapOptions, log: (msg: string) => void = () => {}): Promise<GapReport> {
  const window = opts.window ?? 50
  const redis: TestRedis = await startRedis({ aof: true })
  const [a, b] = (await Promise.all([startNode(redis.url, 'gap-a'), startNode(redis.url, 'gap-b')])) as [TestNode, TestNode]
  const subs: Record<string, Seen> = {}
  const clients: Record<string, MqttClient> = {}
  for (const [name, clean] of [['clean', true], ['persistent', false]] as const) {
    const c = await mqttConnect(a.url, { clientId: `gap-sub-${name}`, clean })
    subs[name] = watch(c)
    clients[name] = c
    await c.subscribeAsync('gap/#', { qos: 1 })
  }

  const acked = new Map<string, Set<number>>()
  let published = 0
  let running = true
  const pubs = await Promise.all(
    Array.from({ length: opts.publishers }, async (_, i) => {
      const id = `p${i}`
      acked.set(id, new Set())
      return { id, client: await mqttConnect(b.url, { clientId: `gap-pub-${i}` }), next: 0, inflight: 0 }
    }),
  )
  // steady load: every 10 ms (or as often as the machine allows) each publisher sends its share
  // of the time gone by, never more than `window` unacknowledged
  let credit = 0
  let lastTick = Date.now()
  const ticker = setInterval(() => {
    if (!running) return
    const now = Date.now()
    credit = Math.min(credit + ((now - lastTick) * opts.rate) / 1000 / opts.publishers, window)
    lastTick = now
    const n = Math.floor(credit)
    credit -= n
    for (const p of pubs) {
      for (let k = 0; k < n && p.inflight < window; k++) {
        const seq = p.next++
        p.inflight++
        published++
        p.client.publish(`gap/${p.id}`, `${p.id}:${seq}`, { qos: 1 }, (err) => {
          p.inflight--
          if (!err) acked.get(p.id)!.add(seq)
        })
      }
    }
  }, 10)

  // A's request for what it missed, and B's answer, lost with a Redis restart (loseResend)
  // (armed before A is frozen: resolves once all that is done)
  const armLoseResend = async (): Promise<{ done: Promise<void> }> => {
    const monitor = new Redis(redis.url, { lazyConnect: true })
    await monitor.connect()
    const asked = new Promise<void>((resolve) => monitor.on('message', (_ch: string, text: string) => text.includes(' resend ') && resolve()))
    await monitor.subscribe('culex:bus:presence')
    const done = lose(monitor, asked)
    done.catch(() => {}) // awaited once A is back from the first freeze
    return { done }
  }
  const lose = async (monitor: Redis, asked: Promise<void>): Promise<void> => {
    await Promise.race([asked, sleep(20_000).then(() => Promise.reject(new Error('A never asked B for the batches it missed')))])
    a.proc.child.kill('SIGSTOP')
    monitor.disconnect()
    const frozen = Date.now()
    await redis.kill()
    log('A asked for what it missed: A frozen again, redis killed')
    await sleep(opts.downMs)
    await redis.restart()
    try {
      await waitFor(async () => (await b.readyz()) === 200, 20_000, 'B ready after the Redis restart')
      await sleep(Math.max(0, frozen + RESEND_WAIT_MS + 500 - Date.now()))
    } finally {
      a.proc.child.kill('SIGCONT')
    }
    await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 20_000, 'both nodes ready after the Redis restart')
    lastBack = Date.now()
  }

  const recoveryMs: number[] = []
  const notReadyWhileFrozenMs: Array<number | null> = []
  /** when A was last back (ready after a freeze or Redis restart) */
  let lastBack = 0
  /** both nodes ready again after Redis came back at `up` (restarted or thawed) */
  const bothReady = async (up: number, after: string): Promise<void> => {
    await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 20_000, `both nodes ready after ${after}`)
    recoveryMs.push(Date.now() - up)
    log(`${new Date().toISOString()} both nodes ready, ${recoveryMs.at(-1)} ms after ${after}`)
    lastBack = Date.now()
  }
  const slot = opts.durationMs / (opts.kills + 1)
  const t0 = Date.now()
  for (let k = 1; k <= opts.kills; k++) {
    await sleep(Math.max(0, t0 + k * slot - Date.now()))
    if (opts.freezeOnly) {
      const lost = opts.loseResend ? await armLoseResend() : undefined
      a.proc.child.kill('SIGSTOP')
      log(`node A frozen for ${opts.stallMs} ms (${k}/${opts.kills})`)
      await sleep((opts.stallMs ?? 0) / 2)
      const cli = (...args: string[]): string => execFileSync('redis-cli', ['-p', String(redis.port), ...args]).toString()
      const link = /id=(\d+) .*name=culex-gap-a-sub /.exec(cli('CLIENT', 'LIST'))
      if (link) cli('CLIENT', 'KILL', 'ID', link[1]!)
      await sleep((opts.stallMs ?? 0) / 2)
      a.proc.child.kill('SIGCONT')
      const back = Date.now()
      await waitFor(async () => (await a.readyz()) === 200, 20_000, 'A ready after the freeze')
      recoveryMs.push(Date.now() - back)
      lastBack = Date.now()
      if (lost) await lost.done
      continue
    }
    if (opts.freezeRedis) {
      const frozenAt = Date.now()
      redis.proc.child.kill('SIGSTOP')
      log(`${new Date().toISOString()} redis frozen for ${opts.downMs} ms (${k}/${opts.kills})`)
      // when node A's /readyz turned 503 (it answers without Redis)
      let notReady: number | null = null
      while (Date.now() - frozenAt < opts.downMs) {
        if (notReady === null && (await a.readyz()) === 503) notReady = Date.now() - frozenAt
        await sleep(Math.min(100, Math.max(0, frozenAt + opts.downMs - Date.now())))
      }
      notReadyWhileFrozenMs.push(notReady)
      redis.proc.child.kill('SIGCONT')
      await bothReady(Date.now(), 'Redis was frozen')
      continue
    }
    const stall = (opts.stallMs ?? 0) > 0 && k % 2 === 1
    await redis.kill()
    log(`${new Date().toISOString()} redis killed (${k}/${opts.kills})${stall ? ', node A frozen until B is back' : ''}`)
    if (stall) a.proc.child.kill('SIGSTOP')
    await sleep(opts.downMs)
    await redis.restart()
    const up = Date.now()
    if (stall) {
      try {
        await waitFor(async () => (await b.readyz()) === 200, 20_000, 'B ready after the Redis restart')
        // B publishes while A cannot hear: at least one message sent to B since it is back (a loaded
        // machine may not tick the publishers within stallMs), then stallMs for B to take it
        const sentBefore = published
        await waitFor(() => published > sentBefore, 20_000, 'a message published to B while A is frozen')
        await sleep(opts.stallMs!)
      } finally {
        a.proc.child.kill('SIGCONT')
        log(`${new Date().toISOString()} node A continued`)
      }
    }
    await bothReady(up, 'the Redis restart')
  }
  await sleep(Math.max(0, t0 + opts.durationMs - Date.now()))
  running = false
  clearInterval(ticker)
  await waitFor(() => pubs.every((p) => p.inflight === 0), 20_000, 'every publish acknowledged')

  let acknowledged = 0
  for (const s of acked.values()) acknowledged += s.size
  const missing = (seen: Seen): number => {
    let n = 0
    for (const [id, seqs] of acked) for (const seq of seqs) if (!seen.copies.get(id)?.has(seq)) n++
    return n
  }
  // the acknowledged messages still on their way: waited for while they keep coming (a loaded
  // machine may take more than a few seconds to drain the subscribers' backlog, and a fixed wait
  // then counted them lost); what has not come once none came for LOST_QUIET_MS never will
  const quietFor = (ms: number, since = 0): boolean => Date.now() - Math.max(since, ...Object.values(subs).map((s) => s.lastAt)) >= ms
  // A gets what it missed while frozen once it asked B again and B answered: a loaded machine
  // may take a while, and A gives the gap up (logged) RESEND_WAIT_MS after asking at the latest,
  // so the quiet that counts starts that long after A was last back
  while (!Object.values(subs).every((s) => missing(s) === 0) && !quietFor(LOST_QUIET_MS, lastBack + RESEND_WAIT_MS)) await sleep(100)
  // a copy of a message would come right behind the first one: until none came for a moment
  while (!quietFor(COPIES_QUIET_MS)) await sleep(50)
  const subscribers: Record<string, SubscriberReport> = {}
  for (const [name, seen] of Object.entries(subs)) {
    let duplicated = 0
    for (const m of seen.copies.values()) for (const n of m.values()) duplicated += n - 1
    subscribers[name] = { lost: missing(seen), duplicated, outOfOrder: seen.outOfOrder }
  }
  // the persistent session's queue in Redis kept nothing it already got: reconnected, it gets
  // only a marker published after the reconnect (queued messages would come before it)
  await clients.persistent!.endAsync()
  const again = await mqttConnect(a.url, { clientId: 'gap-sub-persistent', clean: false })
  const afterReconnect: string[] = []
  again.on('message', (_t, payload) => afterReconnect.push(payload.toString()))
  await pubs[0]!.client.publishAsync('gap/marker', 'marker', { qos: 1 })
  await waitFor(() => afterReconnect.includes('marker'), 5000, 'the marker on the reconnected persistent session')
  // CULEX_GAP_LOGS=<dir>: both nodes' logs there, to read a failed run
  const dump = process.env.CULEX_GAP_LOGS
  if (dump) for (const n of [a, b]) writeFileSync(join(dump, `${n.id}.log`), n.logs().map((l) => JSON.stringify(l)).join('\n'))
  const held = b.logs().filter((l) => l.msg === 'cluster bus: held messages until every node had them')
  const busErrors = [a, b].flatMap((n) => n.logs().filter((l) => l.msg === 'cluster bus error').map((l) => `${n.id}: ${String(l.err)}`))
  return {
    acknowledged,
    published,
    rate: Math.round((published * 1000) / opts.durationMs),
    subscribers,
    recoveryMs,
    ...(opts.freezeRedis ? { notReadyWhileFrozenMs } : {}),
    held: held.map((l) => ({ batches: l.batches as number, released: l.released as number, ms: l.ms as number })),
    busErrors,
    requeued: afterReconnect.length - 1,
  }
}
