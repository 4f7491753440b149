/**
 * What keeps the processes of a local cluster running, like a process manager would: a child
 * that dies while the cluster is not stopping is started again with the same arguments (for a
 * node: the same id and ports, so HAProxy's config stays right), after a back-off that doubles
 * on each quick failure (0.5 s, 1 s, 2 s ... 30 s by default) and resets once the child stayed
 * up a minute.
 * Every exit and restart is logged. A child being restarted on purpose (rolling restart) is
 * `held`: its exit is expected and the supervisor does not start it a second time.
 */
import type { ChildProcess } from 'node:child_process'

export const BACKOFF_FIRST_MS = 500
export const BACKOFF_MAX_MS = 30_000
/** a child that stayed up this long starts its next back-off from the first step again */
export const BACKOFF_RESET_MS = 60_000

export interface SupervisedSpec {
  name: string
  log: string
  /** spawn the process (called for the first start and every restart) */
  spawn(): ChildProcess
  /** resolves once the new process is ready; rejects (the start failed) otherwise */
  ready(proc: ChildProcess): Promise<void>
}

export class Supervised {
  proc: ChildProcess | undefined
  /** restarts after unexpected exits so far */
  restarts = 0
  /** set while a rolling restart (or the stop) handles this child: an exit is expected */
  held = false
  private failures = 0
  private startedAt = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly spec: SupervisedSpec,
    private readonly ctl: { stopping(): boolean; out(line: string): void; changed(): void; backoffFirstMs?: number },
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** spawn and watch; resolves when ready */
  async start(): Promise<void> {
    const proc = this.spec.spawn()
    this.proc = proc
    this.startedAt = Date.now()
    proc.on('exit', (code, signal) => this.exited(proc, code, signal))
    this.ctl.changed()
    await this.spec.ready(proc)
  }

  /** stop scheduling restarts (the cluster stops) */
  cancel(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private exited(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (proc !== this.proc || this.ctl.stopping() || this.held) return
    this.schedule(signal ?? `code ${code}`)
  }

  /** after a rolling restart step failed and left the child down: back to normal supervision */
  resume(): void {
    this.held = false
    if (!this.running && !this.timer && !this.ctl.stopping()) this.schedule('not running after a failed restart')
  }

  private schedule(how: string): void {
    if (Date.now() - this.startedAt >= BACKOFF_RESET_MS) this.failures = 0
    const delay = Math.min(BACKOFF_MAX_MS, (this.ctl.backoffFirstMs ?? BACKOFF_FIRST_MS) * 2 ** this.failures)
    this.failures++
    this.ctl.out(`culex cluster: ${this.spec.name} exited (${how}); restarting in ${(delay / 1000).toFixed(1)} s (restart ${this.restarts + 1}; log ${this.spec.log})`)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.ctl.stopping() || this.held) return
      this.restarts++
      const t0 = Date.now()
      this.start().then(
        () => this.ctl.out(`culex cluster: ${this.spec.name} restarted (pid ${this.pid}, ready in ${Date.now() - t0} ms)`),
        (err: Error) => {
          this.ctl.out(`culex cluster: ${this.spec.name} failed to restart: ${err.message}`)
          // a start that failed without the process exiting: end it, its exit schedules the next try
          if (this.running) this.proc!.kill('SIGKILL')
        },
      )
    }, delay)
  }
}
