/**
 * A loop turn's small Lua steps in one script call. A persistent session's queue takes three
 * steps per delivery (queued, sent, acknowledged: outgoing-lua.ts), each a script of its own
 * before: Redis spent ~5.5 µs per script call on top of the ~2 µs its commands took (three
 * quarters of its time per delivery), and ioredis a Command, its encoding and its reply per
 * step on the node. Here the steps one node takes in a loop turn go in one EVALSHA, in the
 * order they were taken, run one after the other in one Lua loop, each with its own keys and
 * arguments and its own result or error.
 *
 * The steps wait for the end of the loop turn (a `setImmediate`), as `deferredWrite` held their
 * commands before (seam/ioredis.ts): Aedes handles each packet in an immediate of its own, so a
 * turn's are one call. A step's error is its own (a `pcall` per step: Redis at `maxmemory`
 * refuses each writing step with its OOM error, a ReplyError as before), the steps before and
 * after it stand. Commands sent on the link by anything else meanwhile go ahead of the batch:
 * a caller whose command must follow the batch's steps calls `flush()` first (outgoing.ts does
 * for a replay and a drop).
 */
import type { Redis } from 'ioredis'

/**
 * The Lua loop at the end of a batch script, after the step functions and a table `STEPS` of
 * them by name. ARGV: number of steps, then per step its name, its number of keys and of
 * arguments, its arguments; KEYS: every step's keys one after the other. Returns one result per
 * step, an error as an error reply in its place (ioredis gives it as a ReplyError).
 */
export const BATCH_LOOP = `
local out = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local step, nk, na = STEPS[ARGV[a]], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local K, A = {}, {}
  for j = 1, nk do K[j] = KEYS[k + j - 1] end
  for j = 1, na do A[j] = ARGV[a + j - 1] end
  k = k + nk
  a = a + na
  local ok, res = pcall(step, K, A)
  if ok then out[i] = res else out[i] = { err = type(res) == 'table' and res.err or tostring(res) } end
end
return out
`

/** steps per script call at most (a flood's turn is cut into calls of this many) */
export const MAX_STEPS = 256
/** and about this many argument bytes (message bodies): Redis reads a call whole, and Lua copies its arguments */
export const MAX_BYTES = 1 << 20

type Arg = string | Buffer | number
interface Waiting {
  resolve(value: unknown): void
  reject(err: Error): void
}
type BatchRedis = Redis & Record<string, (numKeys: number, ...keysThenArgs: Arg[]) => Promise<unknown[]>>

export class ScriptBatch {
  private keys: string[] = []
  private args: Arg[] = []
  private waiting: Waiting[] = []
  private bytes = 0
  private scheduled = false
  private readonly call: string

  /** `lua` ends with BATCH_LOOP; `name` is the command ioredis defines for it */
  constructor(private readonly db: Redis, name: string, lua: string) {
    db.defineCommand(name, { lua })
    // the Buffer variant: a step's string result (a message body) comes as the bytes stored
    this.call = `${name}Buffer`
  }

  /** run `step` with its keys and arguments in this turn's call: resolves to its result (strings as Buffers, false as null) */
  run(step: string, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.keys.push(...keys)
      this.args.push(step, keys.length, args.length, ...args)
      this.waiting.push({ resolve, reject })
      for (const a of args) if (typeof a !== 'number') this.bytes += a.length
      if (this.waiting.length >= MAX_STEPS || this.bytes >= MAX_BYTES) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        setImmediate(flushLater, this)
      }
    })
  }

  /** send the steps taken so far now, ahead of whatever is sent on the link after this */
  flush(): void {
    this.scheduled = false
    const waiting = this.waiting
    if (waiting.length === 0) return
    const keys = this.keys
    const args = this.args
    this.keys = []
    this.args = []
    this.waiting = []
    this.bytes = 0
    const send = (this.db as BatchRedis)[this.call]!
    send.call(this.db, keys.length, ...keys, waiting.length, ...args).then(
      (results) => {
        for (let i = 0; i < waiting.length; i++) {
          const r = results[i]
          const w = waiting[i]!
          if (r instanceof Error) w.reject(r)
          else w.resolve(r)
        }
      },
      (err: Error) => {
        for (const w of waiting) w.reject(err)
      },
    )
  }
}

function flushLater(batch: ScriptBatch): void {
  batch.flush()
}
