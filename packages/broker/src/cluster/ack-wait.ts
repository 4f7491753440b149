/**
 * Waiting for every other node to acknowledge an announcement on Redis pub/sub (a new
 * subscription, subscription-sync.ts; a `$share` join, shared/redis-store.ts).
 *
 * The announcer publishes with a fresh key; each node that applied it publishes the key on an
 * acknowledgement channel. Redis' PUBLISH (or a script that publishes) answers how many
 * subscriber connections got the announcement, one per node, the announcer's own included:
 * that minus one is how many acknowledgements to wait for. A node that dies meanwhile costs at
 * most the timeout (then `onLate`, and the caller goes on).
 */
import { randomBytes } from 'node:crypto'

interface Pending {
  seen: number
  expected: number
  done: () => void
}

export class AckWaits {
  private readonly pending = new Map<string, Pending>()

  constructor(private readonly timeoutMs: number) {}

  /** an acknowledgement heard on the channel */
  ack(key: string): void {
    const p = this.pending.get(key)
    if (p && ++p.seen >= p.expected) p.done()
  }

  /** whether `key` is one this node is waiting for (its own announcement, heard back) */
  waiting(key: string): boolean {
    return this.pending.has(key)
  }

  /**
   * Announce through `publish(key)` (which answers the receivers' count) and wait for the
   * acknowledgements and for `alsoWait`, at most the timeout; `onLate(seen, expected)` when it
   * ran out. An error from `publish` is thrown, and nothing is left pending.
   */
  async announce(
    publish: (key: string) => Promise<number>,
    onLate: (seen: number, expected: number) => void,
    alsoWait: Promise<unknown> = Promise.resolve(),
  ): Promise<void> {
    const key = randomBytes(8).toString('hex')
    let done!: () => void
    const acked = new Promise<void>((resolve) => (done = resolve))
    const p: Pending = { seen: 0, expected: Number.POSITIVE_INFINITY, done }
    this.pending.set(key, p)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.timeoutMs)))
    try {
      p.expected = (await publish(key)) - 1
      if (p.seen >= p.expected) done()
      if ((await Promise.race([Promise.all([acked, alsoWait]), late])) === 'late') onLate(p.seen, p.expected)
    } finally {
      clearTimeout(timer)
      this.pending.delete(key)
    }
  }
}
