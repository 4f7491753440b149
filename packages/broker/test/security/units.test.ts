/** Passwords, the users file, rate limits and backoff: pure logic, no sockets. */
import { describe, expect, it } from 'vitest'
import { hashPassword, isValidHash, verifyPassword } from '../../src/auth/password.js'
import { formatUsersFile, parseRoles, parseUsersFile, usernameProblem } from '../../src/auth/users.js'
import { addressKey, FailureBackoff, KeyedRateLimiter } from '../../src/limits/rate.js'
import { tokenMatches } from '../../src/auth/admin.js'
import { resolveTarget } from '../../src/commands/user.js'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const FAST = { N: 1024, r: 8, p: 1 }

describe('password hashing', () => {
  it('stores a salted scrypt hash that verifies only the right password', async () => {
    const a = await hashPassword('correct horse', FAST)
    const b = await hashPassword('correct horse', FAST)
    expect(a).toMatch(/^\$scrypt\$N=1024,r=8,p=1\$/)
    expect(a).not.toBe(b) // salted
    expect(a).not.toContain('correct')
    expect(await verifyPassword('correct horse', a)).toBe(true)
    expect(await verifyPassword(Buffer.from('correct horse'), a)).toBe(true)
    expect(await verifyPassword('correct horsE', a)).toBe(false)
    expect(await verifyPassword('', a)).toBe(false)
  })

  it('uses N=16384 by default and refuses malformed or absurd hashes', async () => {
    expect(await hashPassword('x'.repeat(8))).toMatch(/^\$scrypt\$N=16384,r=8,p=1\$/)
    expect(isValidHash('$scrypt$N=1000,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toBe(false)
    expect(isValidHash('$scrypt$N=1073741824,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toBe(false)
    expect(await verifyPassword('x', 'plain')).toBe(false)
  })
})

describe('users file', () => {
  it('round-trips users with roles and names the line of a bad entry', async () => {
    const hash = await hashPassword('password1', FAST)
    const text = formatUsersFile([
      { username: 'bob', hash, roles: [] },
      { username: 'alice', hash, roles: ['device', 'readonly'] },
    ])
    const users = parseUsersFile(text)
    expect([...users.keys()]).toEqual(['alice', 'bob'])
    expect(users.get('alice')!.roles).toEqual(['device', 'readonly'])
    expect(() => parseUsersFile(`alice:${hash}\nbob:nothash\n`, 'u.txt')).toThrow(/u\.txt line 2/)
    expect(() => parseUsersFile(`a/b:${hash}\n`)).toThrow(/line 1: username/)
    expect(() => parseUsersFile(`a:${hash}\na:${hash}\n`)).toThrow(/twice/)
  })

  it('keeps topic separators and wildcards out of usernames (they become %u levels)', () => {
    for (const bad of ['', 'a/b', 'a+', '#', 'a:b', 'a b', '$SYS', 'a\u0000']) expect(usernameProblem(bad)).toBeDefined()
    expect(usernameProblem('alice.smith@example.com')).toBeUndefined()
    expect(parseRoles('device, readonly,device')).toEqual(['device', 'readonly'])
    expect(() => parseRoles('bad role')).toThrow()
  })
})

describe('connect rate per address (token bucket)', () => {
  it('allows a burst of twice the rate, then the rate', () => {
    const r = new KeyedRateLimiter(10)
    let ok = 0
    for (let i = 0; i < 100; i++) if (r.take('a', 1000)) ok++
    expect(ok).toBe(20)
    expect(r.take('b', 1000)).toBe(true) // other addresses unaffected
    expect(r.take('a', 1100)).toBe(true) // 0.1 s later: one token
    expect(r.take('a', 1100)).toBe(false)
    expect(new KeyedRateLimiter(0).take('a', 0)).toBe(true)
  })

  it('stays bounded under a flood of distinct addresses', () => {
    const r = new KeyedRateLimiter(1, 2, 1000)
    for (let i = 0; i < 10_000; i++) r.take(`10.0.${i >> 8}.${i & 255}`, i)
    expect(r.size).toBeLessThanOrEqual(1000)
  })
})

describe('failed-login backoff', () => {
  it('blocks after the threshold, doubling up to the maximum, and forgets after quiet time', () => {
    const b = new FailureBackoff({ threshold: 3, baseMs: 1000, maxMs: 8000 })
    expect(b.fail('k', 0)).toBe(0)
    expect(b.fail('k', 0)).toBe(0)
    expect(b.fail('k', 0)).toBe(1000)
    expect(b.blockedFor('k', 500)).toBe(500)
    expect(b.fail('k', 1000)).toBe(2000)
    expect(b.fail('k', 3000)).toBe(4000)
    expect(b.fail('k', 7000)).toBe(8000)
    expect(b.fail('k', 15000)).toBe(8000)
    expect(b.blockedFor('k', 23000)).toBe(0)
    expect(b.blockedFor('k', 40000)).toBe(0)
    expect(b.fail('k', 40000)).toBe(0) // forgotten: counting starts again
  })

  it('clears on success and is off with threshold 0', () => {
    const b = new FailureBackoff({ threshold: 1, baseMs: 1000, maxMs: 1000 })
    b.fail('k', 0)
    b.succeed('k')
    expect(b.blockedFor('k', 1)).toBe(0)
    const off = new FailureBackoff({ threshold: 0, baseMs: 1000, maxMs: 1000 })
    for (let i = 0; i < 100; i++) off.fail('k', 0)
    expect(off.blockedFor('k', 0)).toBe(0)
  })

  it('limits IPv6 by /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3')
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3')
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb::2'))
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'))
    expect(addressKey('2001:0db8:0001:0002:0:0:0:1')).toBe(addressKey('2001:db8:1:2::1'))
  })
})

describe('admin token and CLI target', () => {
  it('accepts only the exact bearer token', () => {
    expect(tokenMatches('0123456789abcdef', 'Bearer 0123456789abcdef')).toBe(true)
    expect(tokenMatches('0123456789abcdef', 'Bearer 0123456789abcdeF')).toBe(false)
    expect(tokenMatches('0123456789abcdef', '0123456789abcdef')).toBe(false)
    expect(tokenMatches(undefined, 'Bearer x')).toBe(false)
  })

  it('finds the users: flags, then environment, then .culex/cluster.json in the folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'culex-target-'))
    expect(() => resolveTarget({}, {}, dir)).toThrow(/--users-file/)
    mkdirSync(join(dir, '.culex'))
    writeFileSync(join(dir, '.culex', 'cluster.json'), JSON.stringify({ redisUrl: 'redis://127.0.0.1:7000' }))
    expect(resolveTarget({}, {}, dir)).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:7000' })
    expect(resolveTarget({}, { CULEX_REDIS_URL: 'redis://h:1' }, dir)).toEqual({ kind: 'redis', url: 'redis://h:1' })
    expect(resolveTarget({ usersFile: 'u.txt' }, { CULEX_REDIS_URL: 'redis://h:1' }, dir)).toEqual({ kind: 'file', path: 'u.txt' })
    expect(resolveTarget({ redis: 'redis://x:2' }, {}, dir)).toEqual({ kind: 'redis', url: 'redis://x:2' })
  })
})
