/**
 * High availability (issue 13), against real processes: a Redis primary with two replicas under
 * three redis-sentinel processes, two Culex nodes pointed at the sentinels, QoS 1 publishers and
 * persistent QoS 1 subscribers on both nodes. kill -9 of the primary mid-stream: Sentinel
 * promotes a replica, the nodes turn not ready and recover by themselves, no acknowledged
 * message is lost [MQTT-4.3.2-2], and what the cluster keeps in Redis (retained messages,
 * sessions, users, the ACL) is there on the new primary. Then a replica down: acknowledgements
 * still leave within redis_replicas_ack_timeout_ms, counted in a metric, one warning.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, tempDir, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { within } from '../helpers/wait.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { closeHaClients, startHa, type TestHa } from '../helpers/sentinel.js'
import { runCli } from '../helpers/security-node.js'
import { connackOf } from '../helpers/security-node.js'
import { Load } from '../chaos/lib/load.js'
import { sentinelTargetString } from '../../src/local-cluster/sentinel.js'

const ACK_TIMEOUT_MS = 300
let ha: TestHa
let a: TestNode
let b: TestNode

beforeAll(async () => {
  ha = await startHa({ replicas: 2, downAfterMs: 500, failoverTimeoutMs: 20_000 })
  await ha.settled(2)
  const extra = ['--redis-replicas-ack-timeout-ms', String(ACK_TIMEOUT_MS), '--allow-anonymous', 'true', '--auth-fail-threshold', '0']
  ;[a, b] = await Promise.all([startNode(ha.flags, 'ha-a', extra), startNode(ha.flags, 'ha-b', extra)])
}, 60_000)

afterAll(async () => {
  await closeAllClients()
  closeHaClients()
  await killAll()
})

const metric = async (n: TestNode, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${n.http}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN)
}

describe('Redis Sentinel: failover under QoS 1 load', () => {
  it('kill -9 of the primary: a replica is promoted, both nodes recover without a restart, 0 acknowledged messages lost [MQTT-4.3.2-2], retained/sessions/users/ACL survive', async () => {
    const target = sentinelTargetString(ha.ports)
    // ---- state kept in Redis, before the failover
    const dir = tempDir('culex-ha-acl-')
    const acl = join(dir, 'acl.yaml')
    writeFileSync(acl, 'all:\n  - allow: pubsub\n    topic: "#"\n')
    const [set, add] = await Promise.all([runCli(['acl', 'set', acl, '--redis', target]), runCli(['user', 'add', 'alice', '--redis', target], { stdin: 'alice-password\n' })])
    expect(set.code, set.stderr).toBe(0)
    expect(add.code, add.stderr).toBe(0)
    const setter = await mqttConnect(a.url, { clientId: 'ha-retain' })
    await setter.publishAsync('ha/retained', 'kept', { qos: 1, retain: true })
    const sess = await mqttConnect(b.url, { clientId: 'ha-offline', clean: false })
    await sess.subscribeAsync('ha/queued', { qos: 1 })
    await sess.endAsync()
    await setter.publishAsync('ha/queued', 'q1', { qos: 1 })

    // ---- load: publishers on both nodes, each with a persistent subscriber on the other
    const load = new Load({ run: `ha${Date.now()}`, publishers: 4, rate: 400, pubUrl: [a.url, b.url], subUrl: [b.url, a.url] })
    try {
      await load.connect()
      load.start()
      await waitFor(() => load.streams.every((s) => s.ackCount > 20), 10_000, 'load flowing')
      const oldPrimary = ha.ports.primary
      const killSeq = load.streams.map((s) => s.sentCount)
      let firstAckAfter = 0
      const killedAt = Date.now()
      load.streams.forEach((s, i) => (s.onAcked = (seq) => void (seq >= killSeq[i]! && !firstAckAfter && (firstAckAfter = Date.now()))))
      await ha.kill(oldPrimary)
      await waitFor(async () => (await a.readyz()) === 503 && (await b.readyz()) === 503, 5000, 'both nodes not ready')
      await waitFor(async () => ((await ha.primaryPort()) ?? oldPrimary) !== oldPrimary, 20_000, 'Sentinel promoted a replica')
      await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 20_000, 'both nodes ready again')
      // publishers whose acknowledgement the failover crossed were disconnected: they come back
      await waitFor(() => firstAckAfter > 0 && load.allConnected(), 30_000, 'acks flowing again, every client connected')
      const acksBefore = load.streams.reduce((n, s) => n + s.ackCount, 0)
      await waitFor(() => load.streams.reduce((n, s) => n + s.ackCount, 0) > acksBefore + 100, 10_000, 'load after the failover')
      await load.stop()
      const c = load.streams.map((s) => s.counts())
      const sum = (k: 'acknowledged' | 'delivered' | 'lost' | 'duplicated') => c.reduce((n, s) => n + s[k], 0)
      process.stdout.write(
        `sentinel failover: kill to first ack of a message published after it ${firstAckAfter - killedAt} ms; acked ${sum('acknowledged')}, delivered ${sum('delivered')}, lost ${sum('lost')}, duplicated ${sum('duplicated')}\n`,
      )
      expect(sum('acknowledged')).toBeGreaterThan(500)
      expect(sum('lost'), JSON.stringify(c)).toBe(0)
      expect(a.proc.child.exitCode).toBeNull()
      expect(b.proc.child.exitCode).toBeNull()
    } finally {
      await load.close()
    }

    // ---- what Redis kept, read from the new primary through the nodes
    const fresh = await mqttConnect(b.url, { clientId: 'ha-fresh' })
    const gotRetained = collect(fresh)
    await fresh.subscribeAsync('ha/retained', { qos: 1 })
    await waitFor(() => gotRetained.length === 1, 15_000, 'the retained message')
    expect(gotRetained[0]).toMatchObject({ payload: 'kept', retain: true })
    const back = await mqttConnect(a.url, { clientId: 'ha-offline', clean: false })
    const gotQueued = collect(back)
    try {
      await waitFor(() => gotQueued.length === 1, 15_000, 'the queued message of the offline session')
    } catch (err) {
      // slow or lost? (once in a full loaded run, 2026-12-02): what the new primary holds for the
      // session, and node A's last log lines, for whoever reads the failure
      const port = await ha.primaryPort()
      const db = port ? ha.client(port) : undefined
      const queue = db ? await db.lrange('outgoing:ha-offline', 0, -1).catch((e: Error) => [`lrange failed: ${e.message}`]) : ['no primary']
      const logs = a.logs().slice(-30).map((l) => JSON.stringify(l))
      throw new Error(`${(err as Error).message}; got ${gotQueued.length}; outgoing:ha-offline on the primary (${port}): ${JSON.stringify(queue)}; node A's last logs:\n${logs.join('\n')}`)
    }
    expect(gotQueued[0]!.payload).toBe('q1')
    expect((await connackOf(a.mqtt, { username: 'alice', password: 'alice-password' })).code).toBe(0)
    expect((await connackOf(b.mqtt, { username: 'alice', password: 'wrong-password' })).code).toBe(4)
    expect((await runCli(['acl', 'show', '--redis', target])).stdout).toContain('allow: pubsub')
  }, 90_000)

  it('a replica down does not hold PUBACK/PUBREC beyond redis_replicas_ack_timeout_ms: counted in culex_replica_ack_timeouts_total, one warning per episode', async () => {
    // after the failover one replica is left; the node wants 1 (the default under Sentinel)
    await ha.settled(1)
    const primary = (await ha.primaryPort())!
    const replica = [ha.ports.primary, ...ha.ports.replicas].find((p) => p !== primary && ha.running(p))!
    // the replica has caught up with the new primary: a PUBACK comes at once again
    // reconnecting: a publish whose batch a late link drop of the failover failed is sent again
    const pub = await mqttConnect(a.url, { clientId: 'ha-replica-down', reconnectPeriod: 200 })
    const lastLogs = (): string => `node A's last log lines:\n${a.logs().slice(-20).map((l) => JSON.stringify(l)).join('\n')}`
    await waitFor(async () => {
      const t0 = Date.now()
      const acked = await within(pub.publishAsync('ha/slow', 'probe', { qos: 1 }), 5000, 'probe').then(() => true, () => false)
      return acked && Date.now() - t0 < ACK_TIMEOUT_MS / 2
    }, 30_000, 'acks without a timeout')
    const failedBefore = await metric(a, 'culex_replica_ack_failed_total')
    const timeoutsBefore = await metric(a, 'culex_replica_ack_timeouts_total')
    const logsBefore = a.logs().length
    await ha.kill(replica)
    const times: number[] = []
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now()
      await within(pub.publishAsync('ha/slow', String(i), { qos: 1 }), 10_000, `the PUBACK of message ${i} with a replica down`, lastLogs)
      times.push(Date.now() - t0)
    }
    // no Redis link dropped meanwhile (that would be another fault than the one measured)
    expect(await metric(a, 'culex_replica_ack_failed_total'), lastLogs()).toBe(failedBefore)
    // every PUBACK within the timeout (plus slack for a loaded machine), not held for ever
    expect(Math.max(...times)).toBeLessThan(ACK_TIMEOUT_MS + 1500)
    expect(Math.min(...times)).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50)
    // QoS 2: the PUBREC waits the same way [MQTT-4.3.3-2]
    const t2 = Date.now()
    await within(pub.publishAsync('ha/slow', 'q2', { qos: 2 }), 10_000, 'the PUBREC/PUBCOMP of the QoS 2 message', lastLogs)
    expect(Date.now() - t2).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50)
    expect(await metric(a, 'culex_replica_ack_timeouts_total')).toBeGreaterThanOrEqual(timeoutsBefore + 11)
    const warnings = a.logs().slice(logsBefore).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis replicas did not acknowledge'))
    expect(warnings).toHaveLength(1)
  }, 90_000)
})
