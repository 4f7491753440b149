/** ops/redis-refusals.ts: Redis' refusals for a client are warned of, once per message per window, counted; other client errors are not. */
import { describe, expect, it } from 'vitest'
import type { Logger } from '../../src/log.js'
import { redisRefusals, redisWarnings, WINDOW_MS } from '../../src/ops/redis-refusals.js'

const replyError = (message: string, previous?: string): Error => {
  const e = new Error(message) as Error & { previousErrors?: Error[] }
  Object.defineProperty(e, 'name', { value: 'ReplyError' })
  if (previous) {
    const p = new Error(previous)
    Object.defineProperty(p, 'name', { value: 'ReplyError' })
    e.previousErrors = [p]
  }
  return e
}

describe('Redis refusals closing a client', () => {
  it('warns once per Redis message per window with the refusal behind an EXECABORT, counts each, and leaves a client\'s own errors alone', () => {
    const lines: Array<Record<string, unknown>> = []
    const log = { warn: (o: Record<string, unknown>, msg: string) => lines.push({ ...o, msg }) } as unknown as Logger
    let count = 0
    let t = 1_000_000
    const refused = redisRefusals(log, () => count++, () => t)
    const oom = "OOM command not allowed when used memory > 'maxmemory'."
    expect(refused('c1', replyError('EXECABORT Transaction discarded because of previous errors.', oom))).toBe(true)
    expect(refused('c2', replyError('EXECABORT Transaction discarded because of previous errors.', oom))).toBe(true)
    expect(refused('c3', new Error('Invalid protocol version'))).toBe(false)
    t += WINDOW_MS
    expect(refused('c4', replyError('EXECABORT Transaction discarded because of previous errors.', oom))).toBe(true)
    expect(refused('c5', replyError("READONLY You can't write against a read only replica."))).toBe(true)
    expect(count).toBe(4)
    expect(lines).toEqual([
      { client: 'c1', err: `${oom} (EXECABORT Transaction discarded because of previous errors.)`, msg: 'client closed: Redis refused a command for it' },
      { client: 'c4', err: `${oom} (EXECABORT Transaction discarded because of previous errors.)`, more_closes_before: 1, msg: 'client closed: Redis refused a command for it' },
      { client: 'c5', err: "READONLY You can't write against a read only replica.", msg: 'client closed: Redis refused a command for it' },
    ])
  })

  it('a failed Redis write for a client is warned of once per error text per window, with how many it stood for', () => {
    const lines: Array<Record<string, unknown>> = []
    const log = { warn: (o: Record<string, unknown>, msg: string) => lines.push({ ...o, msg }) } as unknown as Logger
    let t = 1_000_000
    const warn = redisWarnings(log, 'session owner not stored', () => t)
    const oom = replyError('EXECABORT Transaction discarded because of previous errors.', "OOM command not allowed when used memory > 'maxmemory'.")
    for (const c of ['a', 'b', 'c']) warn(c, oom)
    warn('d', new Error('Connection is closed.'))
    t += WINDOW_MS
    warn('e', oom)
    expect(lines).toEqual([
      { client: 'a', err: "OOM command not allowed when used memory > 'maxmemory'. (EXECABORT Transaction discarded because of previous errors.)", msg: 'session owner not stored' },
      { client: 'd', err: 'Connection is closed.', msg: 'session owner not stored' },
      { client: 'e', err: "OOM command not allowed when used memory > 'maxmemory'. (EXECABORT Transaction discarded because of previous errors.)", more_before: 2, msg: 'session owner not stored' },
    ])
  })
})
