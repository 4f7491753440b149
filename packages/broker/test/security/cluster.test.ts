/**
 * Users and ACLs in cluster mode: kept in a real Redis, managed with the
 * `culex user` / `culex acl` CLI, applied by every node without a restart.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { connackOf, connect, runCli, startRedis, startTestNode, stopAll, suback, tempDir, waitFor } from '../helpers/security-node.js'

let redisUrl: string
let a: CulexNode
let b: CulexNode
let cwd: string

beforeAll(async () => {
  redisUrl = (await startRedis()).url
  // no failed-login backoff here: the tests poll with logins that fail until a change arrives
  a = await startTestNode({ redis_url: redisUrl, node_id: 'sec-a', auth_fail_threshold: 0 })
  b = await startTestNode({ redis_url: redisUrl, node_id: 'sec-b', auth_fail_threshold: 0 })
  // the folder `culex cluster up` runs in: .culex/cluster.json says where Redis is
  cwd = tempDir()
  mkdirSync(join(cwd, '.culex'))
  writeFileSync(join(cwd, '.culex', 'cluster.json'), JSON.stringify({ redisUrl }))
  await waitFor(() => a.readiness.status().ready && b.readiness.status().ready, 10_000, 'nodes ready')
})
afterAll(stopAll)

// Nodes poll the Redis version key every 250 ms, so a change lands well within a second on a
// quiet machine; each probe costs a CONNECT with an scrypt check, and a loaded 2-core CI machine
// took 3 s: how fast is the bench's business, here only that it lands without a restart.

describe('cluster users and ACL', () => {
  it('refuses anonymous clients on every node by default in cluster mode (CONNACK 5)', async () => {
    expect((await connackOf(a.ports.mqtt)).code).toBe(5)
    expect((await connackOf(b.ports.mqtt)).code).toBe(5)
  })

  it('lets a user added with `culex user add` in the cluster folder (no flags) log in on every node without a restart (nodes poll culex:auth:version; a second on a quiet machine, not timed here)', async () => {
    const add = await runCli(['user', 'add', 'alice', '--roles', 'device'], { cwd, stdin: 'alice-password\n' })
    expect(add.code).toBe(0)
    expect(add.stdout).toMatch(/Redis redis:\/\/127\.0\.0\.1/)
    await waitFor(async () => (await connackOf(b.ports.mqtt, { username: 'alice', password: 'alice-password' })).code === 0, 10_000, 'alice on B')
    await waitFor(async () => (await connackOf(a.ports.mqtt, { username: 'alice', password: 'alice-password' })).code === 0, 10_000, 'alice on A')
    expect((await connackOf(a.ports.mqtt, { username: 'alice', password: 'nope-nope' })).code).toBe(4)
    expect((await runCli(['user', 'list', '--redis', redisUrl])).stdout).toBe('alice\tdevice\n')
  })

  it('applies `culex acl set` on every node without a restart and to existing subscriptions', async () => {
    const c = await connect(`mqtt://127.0.0.1:${b.ports.mqtt}`, { username: 'alice', password: 'alice-password' })
    expect(await suback(c, 'anything/#')).toEqual([1])
    const dir = tempDir()
    const acl = join(dir, 'acl.yaml')
    writeFileSync(acl, 'roles:\n  device:\n    - allow: pubsub\n      topic: devices/%u/#\n')
    expect((await runCli(['acl', 'set', acl], { cwd })).code).toBe(0)
    await waitFor(async () => (await suback(c, 'anything/else'))[0] === 128, 10_000, 'ACL on B')
    const onA = await connect(`mqtt://127.0.0.1:${a.ports.mqtt}`, { username: 'alice', password: 'alice-password' })
    await waitFor(async () => (await suback(onA, ['devices/alice/#', 'devices/bob/#'])).join() === '1,128', 10_000, 'ACL on A')
    // a bad ACL is refused by the CLI and changes nothing
    writeFileSync(acl, 'roles:\n  device:\n    - allow: pubsub\n      topic: devices/#/x\n')
    const bad = await runCli(['acl', 'set', acl], { cwd })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/roles\.device\[0\]/)
    expect((await runCli(['acl', 'clear'], { cwd })).code).toBe(0)
    await waitFor(async () => (await suback(onA, 'anything/else'))[0] === 1, 10_000, 'ACL cleared on A')
  })

  it('disconnects the clients of a user removed on another node, without a restart, and refuses its next login', async () => {
    expect((await runCli(['user', 'add', 'bob'], { cwd, stdin: 'bob-password\n' })).code).toBe(0)
    await waitFor(async () => (await connackOf(a.ports.mqtt, { username: 'bob', password: 'bob-password' })).code === 0, 10_000, 'bob on A')
    const c = await connect(`mqtt://127.0.0.1:${a.ports.mqtt}`, { username: 'bob', password: 'bob-password' })
    let closed = false
    c.on('close', () => (closed = true))
    expect((await runCli(['user', 'remove', 'bob', '--redis', redisUrl])).code).toBe(0)
    await waitFor(async () => closed, 10_000, 'bob disconnected')
    // and B, which polls the same version key, refuses bob too
    await waitFor(async () => (await connackOf(b.ports.mqtt, { username: 'bob', password: 'bob-password' })).code === 4, 10_000, 'bob refused on B')
  })

  it('pushes the acl_file of a node started with one to the whole cluster', async () => {
    const dir = tempDir()
    const acl = join(dir, 'acl.yaml')
    writeFileSync(acl, 'all:\n  - allow: subscribe\n    topic: pushed/#\n')
    await startTestNode({ redis_url: redisUrl, node_id: 'sec-c', acl_file: acl, auth_fail_threshold: 0 })
    const c = await connect(`mqtt://127.0.0.1:${a.ports.mqtt}`, { username: 'alice', password: 'alice-password' })
    await waitFor(async () => (await suback(c, ['pushed/x', 'other/x'])).join() === '1,128', 2000, 'pushed ACL on A')
    expect((await runCli(['acl', 'show', '--redis', redisUrl])).stdout).toContain('pushed/#')
    expect((await runCli(['acl', 'clear'], { cwd })).code).toBe(0)
  })
})
