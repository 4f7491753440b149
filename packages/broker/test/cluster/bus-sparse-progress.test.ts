/**
 * Sparse progress lines (src/cluster/bus-report.ts, issue 15): a receiving node that keeps up, and
 * whose senders read sparse lines (they say `lead` on the presence channel), ends its idle line
 * with `,+,~` and skips the lines after it while it stays idle, up to a refresh; the first turn
 * it falls behind it says so at once. A sender lets its batches go while such a peer is up to
 * SPARSE_LEAD_MESSAGES behind. Before it a receiving node published a line after every turn with
 * a batch: a Redis PUBLISH per batch, 14% of its busy time in the two-node `throughput` bench.
 *
 * Both sides are BusProgress as the bus makes them, over a real redis-server; B's lines are heard
 * by A on a link subscribed to the progress channel, as bus.ts subscribes its control link.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { AHEAD_MESSAGES, BusProgress, SPARSE_LEAD_MESSAGES } from '../../src/cluster/bus-progress.js'
import { REFRESH_MESSAGES } from '../../src/cluster/bus-report.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'
import { killAll, startRedis, waitFor } from '../helpers/cluster-procs.js'

const CHANNEL = 'sparse:progress'
const A = 'aaaaaaaaaaaaaaaa'
const B = 'bbbbbbbbbbbbbbbb'
let links: Redis[] = []
let a: BusProgress
let b: BusProgress
let bBacklog = 0
const heard: string[] = []

beforeAll(async () => {
  const redis = await startRedis()
  links = [new Redis(redis.url), new Redis(redis.url), new Redis(redis.url)]
  const [aPub, aCtl, bPub] = links as [Redis, Redis, Redis]
  const fail = (err: Error): void => expect.unreachable(err.message)
  a = new BusProgress({ pub: aPub, channel: CHANNEL, origin: A, isLive: () => true, onError: fail })
  b = new BusProgress({ pub: bPub, channel: CHANNEL, origin: B, isLive: () => true, onError: fail, backlog: () => bBacklog, paceBytes: 32 * 1024 })
  aCtl.on('message', (_ch: string, text: string) => {
    a.onMessage(text)
    if (text.startsWith(`${B} `)) heard.push(text.slice(B.length + 1))
  })
  await aCtl.subscribe(CHANNEL)
})
afterAll(async () => {
  a.close()
  b.close()
  for (const l of links) l.disconnect()
  await killAll()
})

const packets = (n: number): BusPacket[] =>
  Array.from({ length: n }, (_, i) => ({ cmd: 'publish', brokerId: 'a', brokerCounter: i, topic: 't', payload: Buffer.alloc(64), qos: 1, retain: false, dup: false }))

/** A sends batch `seq` of `n` messages, Redis has answered: went() once its callbacks fired */
function send(seq: number, n: number): { went: () => boolean } {
  a.sending(seq, packets(n))
  let went = false
  a.wait(seq, () => (went = true))
  return { went: () => went }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** B delivered A's batch `seq` of `n` messages, in a turn of its own */
async function deliver(seq: number, n = 10): Promise<void> {
  b.delivered(A, seq, n, n * 64)
  await turn()
  await turn()
}

async function nextLine(): Promise<string> {
  const before = heard.length
  await waitFor(() => heard.length > before, 5000, `a line of B`)
  return heard[before]!
}

it('a receiver that keeps up reports once, skips the lines after it and refreshes them later; its sender leads on it', async () => {
  // A has not said it reads sparse lines: a line every turn, as for a node of an older release
  send(1, 10)
  let line = nextLine()
  await deliver(1)
  expect(await line).toBe(`${A}=1,~`)
  line = nextLine()
  await deliver(2)
  expect(await line).toBe(`${A}=2,~`)

  b.readsSparseLines(A)
  line = nextLine()
  await deliver(3)
  expect(await line).toBe(`${A}=3,+,~`)
  // batches 4 to 6 in turns of their own: no line until the refresh (REFRESH_MS), which says 6
  line = nextLine()
  for (const seq of [4, 5, 6]) await deliver(seq)
  expect(await line).toBe(`${A}=6,+,~`)
  expect(heard.filter((l) => /=[45],/.test(l))).toEqual([])

  // A leads on it: a send far past AHEAD_MESSAGES (and past two sends) goes on Redis' word
  for (let seq = 7; seq <= 9; seq++) expect(send(seq, AHEAD_MESSAGES + 100).went()).toBe(true)
  // up to SPARSE_LEAD_MESSAGES past B's line; further, it waits for B
  const far = send(10, SPARSE_LEAD_MESSAGES)
  expect(far.went()).toBe(false)
  line = nextLine()
  await deliver(10, REFRESH_MESSAGES)
  // REFRESH_MESSAGES delivered: the line goes in that turn, not after REFRESH_MS
  expect(await line).toBe(`${A}=10,+,~`)
  await waitFor(() => far.went(), 5000, 'the send past the lead, once B said 10')
})

it('the first turn a sparse reporter falls behind, it says so at once, and the sender paces strictly again', async () => {
  bBacklog = 64 * 1024
  // over paceBytes: its last figures, without the marks, although it delivered 11
  let line = nextLine()
  await deliver(11)
  expect(await line).toBe(`${A}=10`)
  const waiting = send(12, AHEAD_MESSAGES + 30)
  expect(waiting.went()).toBe(false)
  // its clients catch up, but not all the way: a line every turn, without the idle mark
  bBacklog = 100
  await waitFor(() => heard.includes(`${A}=11`), 5000, 'B reporting 11 once under paceBytes')
  line = nextLine()
  await deliver(12)
  expect(await line).toBe(`${A}=12`)
  expect(waiting.went()).toBe(true)
  // caught up: sparse again
  bBacklog = 0
  line = nextLine()
  await deliver(13)
  expect(await line).toBe(`${A}=13,+,~`)
})
