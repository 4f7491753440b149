/**
 * Redis settings (issue 13): Sentinel keys, the combinations that make no sense (a clear error
 * naming the key, exit status 2), and a Redis Cluster server refused at start.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { minReplicasAcked } from '../../src/config/schema.js'
import { parseTarget, redisOptions, targetOf, targetString } from '../../src/cluster/redis-connect.js'
import { CLI, freePort, killAll, spawnProc, tempDir } from '../helpers/cluster-procs.js'
import { waitFor } from '../helpers/wait.js'
import { redisPing } from '../../src/local-cluster/procs.js'

afterAll(killAll)

const problems = (flags: Record<string, unknown>): string => {
  try {
    loadConfig({ flags })
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('config: Redis Sentinel', () => {
  it('reads the sentinel list and master name; replicas acked default to 1 under Sentinel, 0 otherwise', () => {
    const c = loadConfig({ env: { CULEX_REDIS_SENTINELS: '127.0.0.1:26379, [::1]:26380', CULEX_REDIS_MASTER_NAME: 'culex' } })
    expect(c.redis_sentinels).toEqual(['127.0.0.1:26379', '[::1]:26380'])
    expect(minReplicasAcked(c)).toBe(1)
    expect(targetOf(c)).toEqual({ kind: 'sentinel', name: 'culex', sentinels: [{ host: '127.0.0.1', port: 26379 }, { host: '::1', port: 26380 }] })
    expect(minReplicasAcked(loadConfig({ flags: { redis_url: 'redis://127.0.0.1:6379' } }))).toBe(0)
    expect(minReplicasAcked(loadConfig({ flags: { redis_url: 'redis://127.0.0.1:6379', redis_min_replicas_acked: '2' } }))).toBe(2)
    expect(minReplicasAcked(loadConfig({ flags: { redis_sentinels: 'h:1', redis_master_name: 'm', redis_min_replicas_acked: '0' } }))).toBe(0)
  })

  it('refuses invalid combinations, naming the key', () => {
    expect(problems({ redis_sentinels: 'h:1', redis_master_name: 'm', redis_url: 'redis://h:2' })).toMatch(/redis_sentinels .*either redis_url .* or redis_sentinels/)
    expect(problems({ redis_sentinels: 'h:1' })).toMatch(/redis_master_name .*needed with redis_sentinels/)
    expect(problems({ redis_master_name: 'm' })).toMatch(/redis_master_name .*only means something with redis_sentinels/)
    expect(problems({ redis_sentinel_password: 'pw' })).toMatch(/redis_sentinel_password .*only means something with redis_sentinels/)
    expect(problems({ redis_url: 'redis://h:2', redis_password: 'pw' })).toMatch(/redis_password .*put the password in the URL/)
    expect(problems({ redis_min_replicas_acked: '1' })).toMatch(/redis_min_replicas_acked .*needs Redis/)
    expect(problems({ redis_sentinels: 'nohostport', redis_master_name: 'm' })).toMatch(/redis_sentinels \(flag --redis-sentinels.*host:port/)
  })

  it('`culex start` with a bad combination exits 2 naming the key, before any port opens', async () => {
    const p = spawnProc(process.execPath, [CLI, 'start', '--redis-sentinels', '127.0.0.1:1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0'])
    const { code } = await p.exited
    expect(code).toBe(2)
    expect(p.err.join('')).toMatch(/redis_master_name .*needed with redis_sentinels/)
  })

  it('the CLI form redis-sentinel://host:port,.../name round-trips and builds Sentinel options for ioredis', () => {
    const t = parseTarget('redis-sentinel://:s3cret@127.0.0.1:1,127.0.0.1:2/culex')
    expect(t).toEqual({ kind: 'sentinel', name: 'culex', sentinelPassword: 's3cret', sentinels: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }] })
    expect(targetString(t)).toBe('redis-sentinel://127.0.0.1:1,127.0.0.1:2/culex')
    expect(redisOptions(t)).toMatchObject({ name: 'culex', role: 'master', sentinelPassword: 's3cret', failoverDetector: false })
    expect(parseTarget('redis://127.0.0.1:6379')).toEqual({ kind: 'url', url: 'redis://127.0.0.1:6379' })
  })
})

describe('Redis Cluster refused', () => {
  it('a node pointed at a cluster-mode redis-server (cluster_enabled:1) exits 1 and says why Culex does not support Redis Cluster', async () => {
    const port = await freePort()
    const dir = tempDir('culex-rc-')
    // The cluster bus port defaults to port + 10000, which Redis refuses above 55535 (a free port
    // from the ephemeral range often is): give it its own free port.
    const busPort = await freePort()
    const redis = spawnProc('redis-server', ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`])
    await waitFor(async () => {
      if (redis.child.exitCode !== null) throw new Error(`cluster-mode redis-server exited ${redis.child.exitCode}: ${redis.text().slice(-400)}`)
      return redisPing('127.0.0.1', port)
    }, 10_000, 'cluster-mode redis-server')
    const node = spawnProc(process.execPath, [CLI, 'start', '--redis-url', `redis://127.0.0.1:${port}`, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--log-level', 'warn'])
    const { code } = await node.exited
    expect(code).toBe(1)
    const err = node.err.join('')
    expect(err).toMatch(/cluster_enabled:1/)
    expect(err).toMatch(/does not support Redis Cluster/)
    expect(err).toMatch(/Sentinel/)
  }, 20_000)
})
