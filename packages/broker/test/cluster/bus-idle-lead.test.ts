/**
 * Receiver pacing's lead in the receiver's own work (src/cluster/bus-progress.ts, issue 15). A
 * node whose clients took everything it wrote them ends its progress line with `,~`; a sender
 * then lets a send go on Redis' word (the emit callbacks fire, the publishers' PUBACKs leave)
 * while that node is behind by at most the last IDLE_LEAD_SENDS sends, however many messages
 * they hold. Before it, a send of more than AHEAD_MESSAGES (the `throughput` bench's four
 * publishers' windows of 20 in one turn) waited for the receiver's report of itself every time:
 * a Redis round trip more in every publisher's cycle.
 *
 * Both sides are BusProgress as the bus makes them, over a real redis-server: node B's lines are
 * its own reports (`delivered`, then its next turn), heard by A on a link subscribed to the
 * progress channel as bus.ts subscribes its control link.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { AHEAD_MESSAGES, BusProgress, IDLE_LEAD_SENDS } from '../../src/cluster/bus-progress.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'
import { killAll, startRedis, waitFor } from '../helpers/cluster-procs.js'

const CHANNEL = 'idle-lead:progress'
let links: Redis[] = []
let a: BusProgress
let b: BusProgress
/** bytes waiting for B's clients, as B's backlog() reads them */
let bBacklog = 0
/** lines of B that A has heard */
const heard: string[] = []

beforeAll(async () => {
  const redis = await startRedis()
  links = [new Redis(redis.url), new Redis(redis.url), new Redis(redis.url)]
  const [aPub, aCtl, bPub] = links as [Redis, Redis, Redis]
  const fail = (err: Error): void => expect.unreachable(err.message)
  a = new BusProgress({ pub: aPub, channel: CHANNEL, origin: 'aaaaaaaaaaaaaaaa', isLive: () => true, onError: fail })
  b = new BusProgress({ pub: bPub, channel: CHANNEL, origin: 'bbbbbbbbbbbbbbbb', isLive: () => true, onError: fail, backlog: () => bBacklog, paceBytes: 32 * 1024 })
  aCtl.on('message', (_ch: string, text: string) => {
    a.onMessage(text)
    if (text.startsWith('bbbbbbbbbbbbbbbb ')) heard.push(text)
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

/** A sends batch `seq` of `n` messages, Redis has answered: true when its callbacks fire at once */
function send(seq: number, n: number): { went: () => boolean } {
  a.sending(seq, packets(n))
  let went = false
  a.wait(seq, () => (went = true))
  return { went: () => went }
}

/** B delivered A's batches up to `seq`; resolves once A heard B's line about it */
async function report(seq: number): Promise<string> {
  const before = heard.length
  b.delivered('aaaaaaaaaaaaaaaa', seq)
  await waitFor(() => heard.length > before, 5000, `B's line about batch ${seq}`)
  return heard.at(-1)!
}

it('a send of more than AHEAD_MESSAGES goes on Redis\' word while the receiver keeps up, up to IDLE_LEAD_SENDS sends past its line', async () => {
  const n = AHEAD_MESSAGES + 30
  expect(IDLE_LEAD_SENDS).toBe(2)
  // the first send: B paces A from its first line on
  expect(send(1, n).went()).toBe(true)
  bBacklog = 0
  expect(await report(1)).toBe('bbbbbbbbbbbbbbbb aaaaaaaaaaaaaaaa=1,~')
  // B delivered batch 1 and its clients took it all: sends 2 and 3 go before B reports them
  expect(send(2, n).went()).toBe(true)
  expect(send(3, n).went()).toBe(true)
  // a third send past B's line waits for B
  const fourth = send(4, n)
  expect(fourth.went()).toBe(false)
  await report(2)
  expect(fourth.went()).toBe(true)
})

it('while anything waits for the receiver\'s clients, a send of more than AHEAD_MESSAGES waits for its report', async () => {
  const n = AHEAD_MESSAGES + 30
  await report(4)
  bBacklog = 100
  // B's line says it keeps pace (100 bytes, under paceBytes) but not that its clients took everything
  expect(await report(4)).toBe('bbbbbbbbbbbbbbbb aaaaaaaaaaaaaaaa=4')
  const fifth = send(5, n)
  expect(fifth.went()).toBe(false)
  // AHEAD_MESSAGES behind is close enough as before: B's report of 5 releases 5
  await report(5)
  expect(fifth.went()).toBe(true)
  // and a send of up to AHEAD_MESSAGES goes at once, as before
  expect(send(6, AHEAD_MESSAGES).went()).toBe(true)
})
