/**
 * Authentication against a real node: users file, CONNACK codes, anonymous
 * rules, live reload, the `culex user` CLI, and the $SYS forgery of aedes#597.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { connackOf, connect, metric, rawConnected, runCli, sleep, startTestNode, stopAll, tempDir, waitFor, writeUsers } from '../helpers/security-node.js'

afterAll(stopAll)

describe('authentication', () => {
  it('[MQTT-3.2.2-5] refuses a wrong password and an unknown user with CONNACK 4, anonymous with 5, and closes the socket; right credentials connect', async () => {
    const dir = tempDir()
    const users = join(dir, 'users.txt')
    await writeUsers(users, [{ name: 'alice', password: 'alice-secret' }])
    const node = await startTestNode({ users_file: users })
    const port = node.ports.mqtt
    expect(await connackOf(port, { username: 'alice', password: 'wrong-one' })).toMatchObject({ code: 4, closedAfter: true })
    expect(await connackOf(port, { username: 'mallory', password: 'alice-secret' })).toMatchObject({ code: 4, closedAfter: true })
    expect(await connackOf(port, { username: 'alice' })).toMatchObject({ code: 4, closedAfter: true })
    expect(await connackOf(port, {})).toMatchObject({ code: 5, closedAfter: true })
    expect(await connackOf(port, { username: 'alice', password: 'alice-secret' })).toMatchObject({ code: 0, closedAfter: false })
    const c = await connect(`mqtt://127.0.0.1:${port}`, { username: 'alice', password: 'alice-secret' })
    expect(c.connected).toBe(true)
  })

  it('allows anonymous while no user exists, and not once one is added (applied within a second)', async () => {
    const dir = tempDir()
    const users = join(dir, 'users.txt')
    writeFileSync(users, '')
    const node = await startTestNode({ users_file: users })
    expect((await connackOf(node.ports.mqtt)).code).toBe(0)
    await writeUsers(users, [{ name: 'bob', password: 'bob-secret1' }])
    await waitFor(async () => (await connackOf(node.ports.mqtt)).code === 5, 1500, 'anonymous refused after the first user')
    expect((await connackOf(node.ports.mqtt, { username: 'bob', password: 'bob-secret1' })).code).toBe(0)
  })

  it('lets allow_anonymous=true override the automatic default', async () => {
    const dir = tempDir()
    const users = join(dir, 'users.txt')
    await writeUsers(users, [{ name: 'bob', password: 'bob-secret1' }])
    const node = await startTestNode({ users_file: users, allow_anonymous: 'true' })
    expect((await connackOf(node.ports.mqtt)).code).toBe(0)
  })

  it('[MQTT-3.1.3-5] refuses a client id longer than max_client_id_length with CONNACK 2', async () => {
    const node = await startTestNode({ max_client_id_length: 32 })
    expect((await connackOf(node.ports.mqtt, { clientId: 'x'.repeat(33) })).code).toBe(2)
    expect((await connackOf(node.ports.mqtt, { clientId: 'x'.repeat(32) })).code).toBe(0)
    expect((await connackOf(node.ports.mqtt, { clientId: '' })).code).toBe(0)
  })

  it('[aedes#597] a client publishing $SYS/<node>/new/clients with another client id does not disconnect that client', async () => {
    const node = await startTestNode()
    const url = `mqtt://127.0.0.1:${node.ports.mqtt}`
    const victim = await connect(url, { clientId: 'victim' })
    await victim.subscribeAsync('v/t', { qos: 1 })
    let victimClosed = false
    victim.on('close', () => (victimClosed = true))
    const before = await metric(node.ports.http, 'culex_publish_denied_total')
    for (const nodeId of ['some-other-node', node.nodeId]) {
      const attacker = await rawConnected(node.ports.mqtt)
      attacker.send({ cmd: 'publish', topic: `$SYS/${nodeId}/new/clients`, payload: Buffer.from('victim'), qos: 1, messageId: 1 })
      // a denied PUBLISH closes the attacker's connection [MQTT-3.3.5-2]
      expect(await attacker.closedWithin(2000)).toBe(true)
    }
    await sleep(300)
    expect(victimClosed).toBe(false)
    const got: string[] = []
    victim.on('message', (_t, p) => got.push(p.toString()))
    const other = await connect(url)
    await other.publishAsync('v/t', 'still here', { qos: 1 })
    await waitFor(() => got.includes('still here'), 3000, 'victim receives')
    expect(await metric(node.ports.http, 'culex_publish_denied_total')).toBe(before + 2)
  })

  it('refuses a CONNECT whose will topic the client may not publish to (CONNACK 5)', async () => {
    const node = await startTestNode()
    expect((await connackOf(node.ports.mqtt, { will: { topic: '$SYS/x/new/clients', payload: 'victim' } })).code).toBe(5)
    expect((await connackOf(node.ports.mqtt, { will: { topic: 'status/me', payload: 'gone' } })).code).toBe(0)
  })
})

describe('culex user', () => {
  it('adds, lists, changes and removes users in a users file, reading the password from stdin and never from argv', async () => {
    const dir = tempDir()
    const users = join(dir, 'users.txt')
    const add = await runCli(['user', 'add', 'carol', '--users-file', users, '--roles', 'device'], { stdin: 'carol-password\n' })
    expect(add).toMatchObject({ code: 0 })
    const text = readFileSync(users, 'utf8')
    expect(text).toMatch(/^carol:\$scrypt\$N=16384,r=8,p=1\$.*:device$/m)
    expect(text).not.toContain('carol-password')
    expect((await runCli(['user', 'list', '--users-file', users])).stdout).toBe('carol\tdevice\n')
    // a password on the command line is refused, not stored
    const argv = await runCli(['user', 'add', 'dave', 'dave-password', '--users-file', users], { stdin: 'x\n' })
    expect(argv.code).not.toBe(0)
    expect(readFileSync(users, 'utf8')).not.toContain('dave')
    expect((await runCli(['user', 'add', 'erin', '--users-file', users], { stdin: 'short\n' })).stderr).toMatch(/at least 8/)
    expect((await runCli(['user', 'add', 'carol', '--users-file', users], { stdin: 'another-pass\n' })).stderr).toMatch(/exists/)

    const node = await startTestNode({ users_file: users })
    const port = node.ports.mqtt
    expect((await connackOf(port, { username: 'carol', password: 'carol-password' })).code).toBe(0)
    const connected = await connect(`mqtt://127.0.0.1:${port}`, { username: 'carol', password: 'carol-password' })
    let closed = false
    connected.on('close', () => (closed = true))

    expect((await runCli(['user', 'passwd', 'carol', '--users-file', users], { stdin: 'carol-new-password\n' })).code).toBe(0)
    await waitFor(async () => (await connackOf(port, { username: 'carol', password: 'carol-new-password' })).code === 0, 1500, 'new password')
    expect((await connackOf(port, { username: 'carol', password: 'carol-password' })).code).toBe(4)

    expect((await runCli(['user', 'remove', 'carol', '--users-file', users])).code).toBe(0)
    await waitFor(() => closed, 1500, 'the removed user is disconnected')
    expect((await runCli(['user', 'remove', 'carol', '--users-file', users])).code).toBe(2)
  })
})
