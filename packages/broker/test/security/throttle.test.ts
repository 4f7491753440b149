/**
 * Credential stuffing against a real node: failed logins back off per source
 * address and per username, cheaply (no password hashing once blocked), and
 * a well-behaved client on the same node does not notice.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../src/auth/password.js'
import { formatUsersFile } from '../../src/auth/users.js'
import { writeFileSync } from 'node:fs'
import { Canary, connackOf, sleep, spawnNode, stopAll, tempDir, waitFor, type SpawnedNode } from '../helpers/security-node.js'

let node: SpawnedNode
const PASS = 'right-password'
const BACKOFF_MS = 3000

beforeAll(async () => {
  const users = join(tempDir(), 'users.txt')
  // real scrypt parameters (N=16384): every password check costs what it costs in production
  const hash = await hashPassword(PASS)
  writeFileSync(users, formatUsersFile(['alice', 'bob', 'carol', 'canary'].map((username) => ({ username, hash, roles: [] }))))
  // backoff 3 s, then 6 s, 12 s ... up to a minute: a block cannot lapse during the attack, however
  // slowly a loaded machine runs it (with a 4 s cap it did, and more attempts reached a password check)
  node = await spawnNode({ users_file: users, auth_fail_threshold: 5, auth_backoff_ms: BACKOFF_MS, auth_backoff_max_ms: 60_000 })
})
afterAll(stopAll)

describe('failed-login throttling', () => {
  it('says in the start-up log whether anonymous clients are allowed, and why', async () => {
    const find = (): string | undefined => node.out.join('').split('\n').find((l) => l.includes('"msg":"security"'))
    // logged right after "culex ready"; the pipe may deliver it a moment later
    await waitFor(() => find() !== undefined, 10_000, 'the security log line')
    const line = find()
    expect(JSON.parse(line!)).toMatchObject({ allow_anonymous: false, allow_anonymous_reason: 'auto: users exist', users: 4, acl: false })
  })

  it('throttles 200 failed logins from one address without slowing a well-behaved client', async () => {
    const canary = await Canary.start(`mqtt://127.0.0.1:${node.ports.mqtt}`, { username: 'canary', password: PASS })
    await sleep(500)
    const baseline = canary.rtts.length
    const codes: Array<number | 'closed'> = []
    const t0 = Date.now()
    let good: { code: number | 'closed'; ms: number } | undefined
    const attackers = Array.from({ length: 10 }, async (_, w) => {
      for (let i = w; i < 200; i += 10) {
        const r = await connackOf(node.ports.mqtt, { username: i % 2 ? 'alice' : `nobody${i}`, password: 'guess-' + i, localAddress: '127.0.0.2' })
        codes.push(r.code)
        if (i === 100) good = await connackOf(node.ports.mqtt, { username: 'bob', password: PASS })
      }
    })
    await Promise.all(attackers)
    const attackMs = Date.now() - t0
    const checked = codes.filter((c) => c === 4).length
    const refusedEarly = codes.filter((c) => c === 'closed' || c === 5).length
    const during = canary.rtts.slice(baseline).sort((a, b) => a - b)
    const result = await canary.finish()
    const p99 = during[Math.floor(during.length * 0.99)] ?? 0
    console.log(`attack: ${codes.length} attempts in ${attackMs} ms, ${checked} password checks, ${refusedEarly} refused early; canary p99 ${p99} ms, max ${during.at(-1)} ms`)
    expect(codes.length).toBe(200)
    // only the first few (threshold 5, plus those already in flight) reach a password check
    expect(checked).toBeLessThanOrEqual(15)
    expect(refusedEarly).toBe(200 - checked)
    // the well-behaved client lost nothing and kept a low round-trip time; a good login from another address got in
    expect(result.lost).toBe(0)
    expect(canary.connected).toBe(true)
    // loopback round trips take a few ms; 400 ms leaves room for a CI machine shared with other tests
    expect(p99).toBeLessThan(400)
    expect(good).toMatchObject({ code: 0 })
    expect(good!.ms).toBeLessThan(1000)
  })

  it('backs off a username attacked from many addresses, then lets the right password in', async () => {
    // the node blocks carol when it answers her fifth failure: the block ends BACKOFF_MS after that at the latest
    let fifthAnswered = 0
    for (let i = 0; i < 6; i++) {
      const r = await connackOf(node.ports.mqtt, { username: 'carol', password: 'wrong', localAddress: `127.0.1.${10 + i}` })
      if (i === 4) fifthAnswered = Date.now()
      expect(r.code).toBe(i < 5 ? 4 : 5)
    }
    // locked: even the right password is refused for now, without a password check
    expect((await connackOf(node.ports.mqtt, { username: 'carol', password: PASS, localAddress: '127.0.1.50' })).code).toBe(5)
    expect(Date.now() - fifthAnswered, 'both refusals came within the block').toBeLessThan(BACKOFF_MS)
    await sleep(fifthAnswered + BACKOFF_MS + 100 - Date.now())
    expect((await connackOf(node.ports.mqtt, { username: 'carol', password: PASS, localAddress: '127.0.1.51' })).code).toBe(0)
  })
})
