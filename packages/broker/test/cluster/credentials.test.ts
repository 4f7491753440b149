/**
 * `npm run cluster` (culex cluster up) requires credentials by default; the first user, made with
 * `culex user add` in the same folder and no other flag, connects through HAProxy.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { clusterUp, type UpCluster } from '../helpers/cluster-up.js'
import { tempDir } from '../helpers/cluster-procs.js'
import { connackOf, runCli, sleep } from '../helpers/security-node.js'

let cluster: UpCluster
let cwd: string

beforeAll(async () => {
  cwd = tempDir('culex-cred-')
  const dir = join(cwd, '.culex')
  mkdirSync(dir)
  cluster = await clusterUp(1, ['--log-level', 'warn'], dir)
}, 120_000)
afterAll(async () => {
  await cluster?.down()
}, 60_000)

it('refuses anonymous clients through HAProxy (CONNACK 5) until a user exists, then lets that user in', async () => {
  expect((await connackOf(cluster.ports.mqtt)).code).toBe(5)
  const add = await runCli(['user', 'add', 'alice'], { cwd, stdin: 'alice-password\n' })
  expect(add.code).toBe(0)
  // nodes pick the change up within a second; probing in a loop meanwhile would trip the
  // failed-login backoff for this address, so wait, then try once
  await sleep(1500)
  expect((await connackOf(cluster.ports.mqtt, { username: 'alice', password: 'alice-password' })).code).toBe(0)
  expect((await connackOf(cluster.ports.mqtt, { username: 'alice', password: 'wrong-password' })).code).toBe(4)
  expect((await connackOf(cluster.ports.mqtt)).code).toBe(5)
})
