/**
 * The fuzz runner: `workers` concurrent sessions against one node over one
 * transport, case after case, until `cases` ran or the node exited. 90% of
 * the cases mutate one valid packet of a random type (sent after CONNECT with
 * in-flight state in place, packet ids taken from that state), 10% mutate the
 * CONNECT itself; one case in eight splices two mutated packets into one
 * write; one in five is written in two pieces. Shared by security/fuzz.test.ts and `npm run fuzz`.
 */
import { caseRand, completeFrames, connectPacket, int, mutate, pick, validPackets } from './packets.js'
import { FuzzSession, preConnectCase, type Outcome, type SetupFailure } from './session.js'
import type { Transport } from './conn.js'

const MAX_FAILURES_IN_A_ROW = 200
interface Worker {
  session?: FuzzSession
}

/** one case in five is written in two pieces: where to cut it (0: one piece) */
const cutOf = (bytes: Buffer, rand: () => number): number => (rand() < 0.2 ? 1 + int(rand, bytes.length + 1) : 0)

/** a valid SUBSCRIBE (to fz//#) to follow a mutated CONNECT */
const gen0 = Buffer.from('820a00010005667a2f2f2301', 'hex')

export interface FuzzTarget {
  transport: Transport
  port: number
  /** false once the node process has exited */
  alive(): boolean
}

export interface FuzzOptions {
  cases: number
  seed: number
  /** concurrent connections */
  workers: number
  /** how long a case may stay unanswered before its connection is dropped */
  caseTimeoutMs: number
  /** the node's max_packet_size (a case is completed up to it, see completeFrames) */
  maxPacketSize: number
  /** called every `progressMs` with the cases run so far */
  onProgress?: (done: number, seconds: number) => void
  progressMs?: number
}

export interface FuzzResult {
  /** cases whose bytes were sent and answered (PINGRESP), refused (close) or left unanswered (timeout) */
  cases: number
  outcomes: Record<Outcome, number>
  /** connections or sessions that could not be set up; the case was then tried again, so these are not cases */
  setupFailures: Record<SetupFailure, number>
  crashed: boolean
  seconds: number
  /** hex of the last cases sent before the node exited (to reproduce a crash) */
  lastCases: string[]
}

export async function runFuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzResult> {
  const outcomes: Record<Outcome, number> = { alive: 0, closed: 0, timeout: 0 }
  const setupFailures: Record<SetupFailure, number> = { connect: 0, connack: 0, 'setup-closed': 0, 'setup-timeout': 0 }
  const recent: string[] = []
  let next = 0
  let done = 0
  const t0 = Date.now()
  const progress = opts.onProgress
    ? setInterval(() => opts.onProgress!(done, (Date.now() - t0) / 1000), opts.progressMs ?? 10_000)
    : undefined

  /** one case: its bytes sent and the node's answer, or why nothing could be sent (then it is tried again) */
  const runCase = async (i: number, clientId: string, w: Worker): Promise<Outcome | SetupFailure> => {
    const rand = caseRand(opts.seed, i)
    if (rand() < 0.1) {
      // before CONNECT: a mutated CONNECT, sometimes followed by another packet
      const connect = connectPacket(clientId + 'p', rand() < 0.5, rand)
      const bytes = mutate(connect, [() => connect, () => gen0], rand)
      const sent = completeFrames(rand() < 0.3 ? Buffer.concat([bytes, gen0]) : bytes, opts.maxPacketSize)
      recent.push(sent.toString('hex'))
      return preConnectCase(target.transport, target.port, sent, opts.caseTimeoutMs, cutOf(sent, rand))
    }
    if (!w.session) {
      const opened = await FuzzSession.open(target.transport, target.port, clientId, rand, opts.caseTimeoutMs)
      if (typeof opened === 'string') return opened
      w.session = opened
    }
    const valid = validPackets(w.session.state, rand)
    const one = (): Buffer => mutate(pick(rand, valid)(), valid, rand)
    const bytes = int(rand, 8) === 0 ? Buffer.concat([one(), one()]) : one()
    const sent = completeFrames(bytes, opts.maxPacketSize)
    recent.push(sent.toString('hex'))
    const outcome = await w.session.send(sent, opts.caseTimeoutMs, cutOf(sent, rand))
    if (outcome !== 'alive') w.session = undefined
    return outcome
  }

  const worker = async (n: number): Promise<void> => {
    // a new client id when this one's session keeps failing at set-up (a persistent session can
    // end up unresumable or slow to resume: reported in setupFailures, the run goes on with a fresh id)
    let generation = 0
    const w: Worker = {}
    let failedInARow = 0
    while (target.alive()) {
      const i = next++
      if (i >= opts.cases) break
      for (;;) {
        const r = await runCase(i, `fz${opts.seed % 1000}-${n}${generation ? `.${generation}` : ''}`, w)
        if (r === 'alive' || r === 'closed' || r === 'timeout') {
          outcomes[r]++
          done++
          failedInARow = 0
          break
        }
        setupFailures[r]++
        if (failedInARow >= 2) generation++
        // a node that refuses every connection ends the run short (the caller sees cases < requested)
        if (++failedInARow >= MAX_FAILURES_IN_A_ROW || !target.alive()) return
        await new Promise((res) => setTimeout(res, 20))
      }
      if (recent.length > 64) recent.splice(0, recent.length - 64)
    }
    w.session?.conn.destroy()
  }
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)))
  clearInterval(progress)
  return { cases: done, outcomes, setupFailures, crashed: !target.alive(), seconds: (Date.now() - t0) / 1000, lastCases: target.alive() ? [] : recent }
}
