/**
 * Child processes the suite starts (brokers, redis, the cluster). Each is
 * stopped by its own PID; anything still running when the suite exits is
 * killed on the way out.
 */
import { spawn, type ChildProcess } from 'node:child_process'

const running = new Set<Managed>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const m of running) m.killNow()
  })
}

export class Managed {
  readonly child: ChildProcess
  private readonly tail: string[] = []
  private lineWaiters: Array<{ re: RegExp; resolve: () => void }> = []
  exited = false
  exitCode: number | null = null

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {
    hookExit()
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: opts.env ?? process.env })
    running.add(this)
    // a chunk may end inside a line: keep the unfinished part for the next chunk of the same stream
    const onData = (partial: { rest: string }) => (chunk: Buffer): void => {
      const parts = (partial.rest + chunk.toString('utf8')).split('\n')
      partial.rest = parts.pop() ?? ''
      for (const line of parts) {
        if (!line.trim()) continue
        this.tail.push(line)
        if (this.tail.length > 200) this.tail.shift()
        this.lineWaiters = this.lineWaiters.filter((w) => {
          if (!w.re.test(line)) return true
          w.resolve()
          return false
        })
      }
    }
    this.child.stdout?.on('data', onData({ rest: '' }))
    this.child.stderr?.on('data', onData({ rest: '' }))
    this.child.on('error', (err) => {
      this.tail.push(`spawn error: ${err.message}`)
      this.markExited(null)
    })
    this.child.on('exit', (code) => this.markExited(code))
  }

  private markExited(code: number | null): void {
    this.exited = true
    this.exitCode = code
    running.delete(this)
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  alive = (): boolean => !this.exited

  /** Every line (of the last 200) it printed that matches `re`. */
  lines(re: RegExp): string[] {
    return this.tail.filter((l) => re.test(l))
  }

  /** The last lines it printed, for error messages. */
  output(lines = 8): string {
    return this.tail.slice(-lines).join('\n')
  }

  /** Resolves when a line of its output matches `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<void> {
    if (this.tail.some((l) => re.test(l))) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms`)), timeoutMs)
      const check = setInterval(() => {
        if (this.exited) {
          clearTimeout(timer)
          clearInterval(check)
          reject(new Error(`${this.name} exited (code ${this.exitCode}) before printing ${re}`))
        }
      }, 100)
      this.lineWaiters.push({
        re,
        resolve: () => {
          clearTimeout(timer)
          clearInterval(check)
          resolve()
        },
      })
    })
  }

  /** Sends `signal`, waits up to timeoutMs for the exit, then SIGKILLs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()))
    this.child.kill(signal)
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref())
    if ((await Promise.race([exited, timer])) === 'timeout' && !this.exited) {
      this.child.kill('SIGKILL')
      await exited
    }
  }

  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL')
  }
}

/** Stops every child still running (used on SIGINT). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((m) => m.stop('SIGTERM', 5000)))
}
