/**
 * Node-local facts for cluster-wide answers: a request goes to every node over Redis pub/sub
 * and each node answers on its own reply channel.
 *
 *   culex#ops             requests {i: id, f: asking node, o: operation, a: arguments}
 *   culex#ops:<node id>   replies  {i: id, n: answering node, r: result | e: error}
 *
 * Redis' PUBLISH answers how many connections got the request (one subscriber link per node,
 * the asking one included): that many replies are awaited, at most `timeoutMs`; a node that does
 * not answer in time is counted in `missing`. A '#' can never be part of an MQTT topic name
 * [MQTT-3.3.2-2], so no client can publish onto these channels, and the cluster bus reads only
 * its own channel. In memory mode (one node) the request is answered locally.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from '../../log.js'

export const OPS_CHANNEL = 'culex#ops'
export const opsReplyChannel = (nodeId: string): string => `culex#ops:${nodeId}`

export type RpcHandlers = Record<string, (args: Record<string, unknown>) => unknown>

export interface NodeAnswer<T> {
  node: string
  result: T
}

export interface NodeRpc {
  /** ask every live node, this one included */
  all<T>(op: string, args?: Record<string, unknown>): Promise<{ answers: Array<NodeAnswer<T>>; missing: number }>
  close(): Promise<void>
}

async function answer(handlers: RpcHandlers, op: string, args: Record<string, unknown>): Promise<unknown> {
  const handler = handlers[op]
  if (!handler) throw new Error(`unknown operation ${op}`)
  return handler(args)
}

export function localRpc(nodeId: string, handlers: RpcHandlers): NodeRpc {
  return {
    async all<T>(op: string, args: Record<string, unknown> = {}) {
      return { answers: [{ node: nodeId, result: (await answer(handlers, op, args)) as T }], missing: 0 }
    },
    async close() {},
  }
}

interface Pending {
  answers: Array<NodeAnswer<unknown>>
  /** replies, errors included */
  received: number
  expected: number
  done: () => void
}

export async function redisRpc(opts: { sub: Redis; pub: Redis; nodeId: string; handlers: RpcHandlers; log: Logger; timeoutMs?: number }): Promise<NodeRpc> {
  const { sub, pub, nodeId, handlers, log } = opts
  const timeoutMs = opts.timeoutMs ?? 3000
  const replyChannel = opsReplyChannel(nodeId)
  const pending = new Map<string, Pending>()

  const onMessage = (channelBuf: Buffer, message: Buffer): void => {
    const channel = channelBuf.toString()
    if (channel !== OPS_CHANNEL && channel !== replyChannel) return
    let msg: { i?: unknown; f?: unknown; o?: unknown; a?: unknown; n?: unknown; r?: unknown; e?: unknown }
    try {
      msg = JSON.parse(message.toString()) as typeof msg
    } catch {
      return
    }
    if (typeof msg?.i !== 'string') return
    if (channel === OPS_CHANNEL) {
      if (typeof msg.f !== 'string' || typeof msg.o !== 'string') return
      const id = msg.i
      const to = opsReplyChannel(msg.f)
      answer(handlers, msg.o, (msg.a ?? {}) as Record<string, unknown>).then(
        (r) => pub.publish(to, JSON.stringify({ i: id, n: nodeId, r: r ?? null })),
        (err: Error) => pub.publish(to, JSON.stringify({ i: id, n: nodeId, e: err.message })),
      ).catch((err: Error) => log.warn({ err: err.message }, 'ops request: reply not sent'))
      return
    }
    const p = pending.get(msg.i)
    if (!p || typeof msg.n !== 'string') return
    if (typeof msg.e === 'string') log.warn({ node: msg.n, err: msg.e }, 'ops request failed on a node')
    else p.answers.push({ node: msg.n, result: msg.r })
    p.received++
    if (p.received >= p.expected) p.done()
  }
  sub.on('messageBuffer', onMessage)
  await sub.subscribe(OPS_CHANNEL, replyChannel)

  return {
    async all<T>(op: string, args: Record<string, unknown> = {}) {
      const id = randomBytes(8).toString('hex')
      let done!: () => void
      const finished = new Promise<void>((resolve) => (done = resolve))
      const p: Pending = { answers: [], received: 0, expected: Number.POSITIVE_INFINITY, done }
      pending.set(id, p)
      const timer = setTimeout(done, timeoutMs)
      try {
        // PUBLISH waits in ioredis' offline queue while Redis is away: the timeout covers it too
        pub.publish(OPS_CHANNEL, JSON.stringify({ i: id, f: nodeId, o: op, a: args })).then(
          (receivers) => {
            p.expected = receivers
            if (p.received >= receivers) done()
          },
          () => done(),
        )
        await finished
        if (p.expected === Number.POSITIVE_INFINITY) {
          throw Object.assign(new Error('Redis does not answer: no cluster-wide answer now'), { statusCode: 503 })
        }
        return { answers: p.answers as Array<NodeAnswer<T>>, missing: Math.max(0, p.expected - p.answers.length) }
      } finally {
        clearTimeout(timer)
        pending.delete(id)
      }
    },
    async close() {
      sub.off('messageBuffer', onMessage)
      await sub.unsubscribe(OPS_CHANNEL, replyChannel).catch(() => {})
    },
  }
}
