/**
 * The fuzz runner: `workers` concurrent sessions against one node over one
 * transport, case after case, until `cases` ran or the node exited. 90% of
 * the cases mutate one valid packet of a random type (sent after CONNECT with
 * in-flight state in place, packet ids taken from that state), 10% mutate the
 * CONNECT itself; one case in eight splices two mutated packets into one
 * write. Shared by security/fuzz.test.ts and `npm run fuzz`.
 */
import { caseRand, completeFrames, connectPacket, int, mutate, pick, validPackets } from './packets.js'
import { FuzzSession, preConnectCase, type Outcome } from './session.js'
import type { Transport } from './conn.js'

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
  cases: number
  outcomes: Record<Outcome | 'refused', number>
  /** sessions that could not be set up (CONNACK or PINGRESP late) */
  setupFailures: number
  crashed: boolean
  seconds: number
  /** hex of the last cases sent before the node exited (to reproduce a crash) */
  lastCases: string[]
}

export async function runFuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzResult> {
  const outcomes = { alive: 0, closed: 0, timeout: 0, refused: 0 }
  const recent: string[] = []
  let setupFailures = 0
  let next = 0
  let done = 0
  const t0 = Date.now()
  const progress = opts.onProgress
    ? setInterval(() => opts.onProgress!(done, (Date.now() - t0) / 1000), opts.progressMs ?? 10_000)
    : undefined

  const worker = async (w: number): Promise<void> => {
    const clientId = `fz${opts.seed % 1000}-${w}`
    let session: FuzzSession | undefined
    while (next < opts.cases && target.alive()) {
      const i = next++
      const rand = caseRand(opts.seed, i)
      let outcome: Outcome | 'refused'
      if (rand() < 0.1) {
        // before CONNECT: a mutated CONNECT, sometimes followed by another packet
        const connect = connectPacket(clientId + 'p', rand() < 0.5, rand)
        const bytes = mutate(connect, [() => connect, () => gen0], rand)
        recent.push(bytes.toString('hex'))
        const sent = completeFrames(rand() < 0.3 ? Buffer.concat([bytes, gen0]) : bytes, opts.maxPacketSize)
        outcome = await preConnectCase(target.transport, target.port, sent, opts.caseTimeoutMs)
      } else {
        if (!session) {
          session = await FuzzSession.open(target.transport, target.port, clientId, rand, opts.caseTimeoutMs)
          if (!session) {
            setupFailures++
            outcomes.refused++
            done++
            continue
          }
        }
        const valid = validPackets(session.state, rand)
        const one = (): Buffer => mutate(pick(rand, valid)(), valid, rand)
        const bytes = int(rand, 8) === 0 ? Buffer.concat([one(), one()]) : one()
        recent.push(bytes.toString('hex'))
        outcome = await session.send(completeFrames(bytes, opts.maxPacketSize), opts.caseTimeoutMs)
        if (outcome !== 'alive') session = undefined
      }
      if (recent.length > 64) recent.splice(0, recent.length - 64)
      outcomes[outcome]++
      done++
    }
    session?.conn.destroy()
  }
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)))
  clearInterval(progress)
  return { cases: done, outcomes, setupFailures, crashed: !target.alive(), seconds: (Date.now() - t0) / 1000, lastCases: target.alive() ? [] : recent }
}
