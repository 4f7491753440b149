/**
 * The fuzz runner: `workers` concurrent sessions against one node over one
 * transport, case after case, until `cases` ran or the node exited. 90% of
 * the cases mutate one valid packet of a random type (sent after CONNECT with
 * in-flight state in place, packet ids taken from that state), 10% mutate the
 * CONNECT itself; one case in eight splices two mutated packets into one
 * write; one in five is written in two pieces. Shared by security/fuzz.test.ts and `npm run fuzz`.
 * Protocol levels: each worker speaks one of `protocols` (3.1.1 and 5 alternate over the workers
 * when both are asked for); a case before CONNECT picks its level itself, and one in ten of those
 * takes over a worker's client id, so sessions also change hands between levels. A v5 case is a
 * packet from packets-v5.ts, sent as it is or (one in two) through the byte mutations.
 */
import { caseRand, completeFrames, connectPacket, int, mutate, pick, validPackets } from './packets.js'
import { authPacket, connectPacketV5, frame, validPacketsV5 } from './packets-v5.js'
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
/** the same at protocol level 5 (an empty property block) */
const gen0v5 = frame(0x82, Buffer.from('000100' + '0005667a2f2f2301', 'hex'))

export type Version = 4 | 5
/** `--protocol 3.1.1|5|both` as protocol levels */
export function protocolLevels(protocol: string): Version[] {
  if (protocol === '3.1.1') return [4]
  if (protocol === '5') return [5]
  if (protocol === 'both') return [4, 5]
  throw new Error(`protocol: 3.1.1, 5 or both, not ${protocol}`)
}

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
  /** protocol levels to speak (default [4]) */
  protocols?: Version[]
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
  /** the last cases sent before the node exited, as `v<level>:<hex>` (to reproduce a crash) */
  lastCases: string[]
  /** cases by protocol level */
  byVersion: Record<Version, number>
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

  const protocols = opts.protocols ?? [4]
  const byVersion: Record<Version, number> = { 4: 0, 5: 0 }

  /** a mutated CONNECT at level `v` (v5: and AUTH before or after it), sometimes followed by another packet */
  const preConnectBytes = (clientId: string, v: Version, rand: () => number): Buffer => {
    if (v === 4) {
      const connect = connectPacket(clientId, rand() < 0.5, rand)
      const bytes = mutate(connect, [() => connect, () => gen0], rand)
      return rand() < 0.3 ? Buffer.concat([bytes, gen0]) : bytes
    }
    const connect = (): Buffer => connectPacketV5(rand, { clientId, clean: rand() < 0.5, wild: true })
    const first = rand() < 0.5 ? connect() : mutate(connect(), [connect, () => gen0v5, () => authPacket(rand)], rand)
    const r = rand()
    if (r < 0.1) return Buffer.concat([authPacket(rand), first]) // AUTH before CONNECT [MQTT-3.1.0-1]
    if (r < 0.2) return Buffer.concat([first, authPacket(rand)]) // AUTH right after CONNECT, no method agreed [MQTT-4.12.0-1]
    return r < 0.45 ? Buffer.concat([first, gen0v5]) : first
  }

  /** one case: its bytes sent and the node's answer, or why nothing could be sent (then it is tried again) */
  const runCase = async (i: number, clientId: string, version: Version, w: Worker): Promise<Outcome | SetupFailure> => {
    const rand = caseRand(opts.seed, i)
    if (rand() < 0.1) {
      // before CONNECT: a mutated CONNECT (in a mix, of either level; one in ten with the id of a worker's session)
      const v = protocols.length > 1 ? pick(rand, protocols) : protocols[0]!
      const id = protocols.length > 1 && rand() < 0.1 ? clientId : clientId + 'p'
      const sent = completeFrames(preConnectBytes(id, v, rand), opts.maxPacketSize)
      recent.push(`v${v}:${sent.toString('hex')}`)
      const o = await preConnectCase(target.transport, target.port, sent, opts.caseTimeoutMs, cutOf(sent, rand), v)
      if (o !== 'connect') byVersion[v]++
      return o
    }
    if (!w.session) {
      const opened = await FuzzSession.open(target.transport, target.port, clientId, rand, opts.caseTimeoutMs, version)
      if (typeof opened === 'string') return opened
      w.session = opened
    }
    const v5 = w.session.state.version === 5
    const valid = v5 ? validPacketsV5(w.session.state, rand) : validPackets(w.session.state, rand)
    const one = (): Buffer => {
      const p = pick(rand, valid)()
      return v5 && rand() < 0.5 ? p : mutate(p, valid, rand)
    }
    const bytes = int(rand, 8) === 0 ? Buffer.concat([one(), one()]) : one()
    const sent = completeFrames(bytes, opts.maxPacketSize)
    recent.push(`v${w.session.state.version}:${sent.toString('hex')}`)
    const outcome = await w.session.send(sent, opts.caseTimeoutMs, cutOf(sent, rand))
    byVersion[w.session.state.version]++
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
        const r = await runCase(i, `fz${opts.seed % 1000}-${n}${generation ? `.${generation}` : ''}`, protocols[n % protocols.length]!, w)
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
  return { cases: done, outcomes, setupFailures, crashed: !target.alive(), seconds: (Date.now() - t0) / 1000, lastCases: target.alive() ? [] : recent, byVersion }
}
