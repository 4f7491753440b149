/**
 * The seam to ioredis 5 (docs/internals.md, row R1): the socket a connection reads from,
 * `redis.stream`, undocumented. test/seam/contract.test.ts checks it.
 */
import type { Redis } from 'ioredis'

/** the socket of `redis`' current connection, to pause and resume its reads (undefined before connecting) */
export function socketOf(redis: Redis): { pause(): void; resume(): void } | undefined {
  return (redis as unknown as { stream?: { pause(): void; resume(): void } }).stream
}
