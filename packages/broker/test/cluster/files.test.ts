/**
 * The cluster's files: HAProxy configs pass `haproxy -c -f`, the certificate script makes what
 * devices and HAProxy need, docker-compose.yml passes `docker-compose config`, the Dockerfile is
 * multi-stage, non-root, with a /readyz health check; and the CLI's messages when something is missing.
 */
import { execFile } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { renderHaproxyFile, checkHaproxyConfig } from '../../src/local-cluster/haproxy.js'
import { CLI, REPO_ROOT, killAll, spawnProc, tempDir } from '../helpers/cluster-procs.js'

const run = promisify(execFile)
const certsDir = tempDir('culex-certs-')
let made: Promise<unknown> | undefined
const makeCerts = (): Promise<unknown> => (made ??= run('sh', [join(REPO_ROOT, 'certs.example', 'make-certs.sh'), certsDir, 'broker.example.lan']))

afterAll(async () => {
  await killAll()
})

describe('cluster files', () => {
  it('certs.example/make-certs.sh makes a local CA, a server certificate for localhost, 127.0.0.1 and a settable host name, and the combined PEM', async () => {
    await makeCerts()
    const ca = new X509Certificate(readFileSync(join(certsDir, 'ca.crt')))
    const server = new X509Certificate(readFileSync(join(certsDir, 'server.crt')))
    expect(ca.ca).toBe(true)
    expect(server.ca).toBe(false)
    expect(server.verify(ca.publicKey)).toBe(true)
    expect(server.checkHost('localhost')).toBe('localhost')
    expect(server.checkHost('broker.example.lan')).toBe('broker.example.lan')
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(server.checkHost('other.example')).toBeUndefined()
    // server.pem = certificate + its private key, what HAProxy's `crt` wants
    const pem = readFileSync(join(certsDir, 'server.pem'), 'utf8')
    expect(new X509Certificate(pem).fingerprint256).toBe(server.fingerprint256)
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ec')
    expect(statSync(join(certsDir, 'server.key')).mode & 0o077).toBe(0) // keys readable by the owner only
    // nothing it writes can be committed
    for (const f of ['certs/ca.key', 'certs/server.pem', 'certs/server.key', 'certs/ca.crt', 'certs.example/server.pem']) {
      await expect(run('git', ['check-ignore', '-q', f], { cwd: REPO_ROOT })).resolves.toBeDefined()
    }
  })

  it('haproxy/haproxy.cfg (Docker Compose) passes `haproxy -c -f`', async () => {
    await makeCerts()
    await checkHaproxyConfig(join(REPO_ROOT, 'haproxy', 'haproxy.cfg'), { ...process.env, CULEX_TLS_PEM: join(certsDir, 'server.pem') })
  })

  it('the template `culex cluster up` renders passes `haproxy -c -f`: leastconn, /readyz checks, PROXY v2, timeouts above 1.5 x the keepalive limit', async () => {
    await makeCerts()
    const text = renderHaproxyFile(join(REPO_ROOT, 'haproxy', 'haproxy.cfg.template'), {
      bind: '127.0.0.1',
      mqttPort: 1883,
      tlsPort: 8883,
      wssPort: 8443,
      statsPort: 8404,
      apiPort: 9443,
      pem: join(certsDir, 'server.pem'),
      keepaliveMaxS: 300,
      nodes: [1, 2, 3].map((i) => ({ id: `culex-${i}`, host: '127.0.0.1', mqtt: 20000 + i, ws: 21000 + i, http: 22000 + i })),
    })
    const file = join(certsDir, 'haproxy.cfg')
    writeFileSync(file, text)
    await checkHaproxyConfig(file)
    expect(text).not.toMatch(/\{\{/)
    expect(text.match(/balance leastconn/g)).toHaveLength(2)
    expect(text.match(/http-check send meth GET uri \/readyz/g)).toHaveLength(3) // MQTT, WebSocket, API
    expect(text).toMatch(/default-server check .*send-proxy-v2/)
    expect(text).toContain('server culex-3 127.0.0.1:20003 check port 22003')
    expect(text).toContain('server culex-3 127.0.0.1:21003 check port 22003')
    expect(text).toMatch(/bind 127\.0\.0\.1:8883 ssl crt/)
    expect(text).toMatch(/bind 127\.0\.0\.1:8443 ssl crt .* alpn http\/1\.1/)
    expect(text).toMatch(/frontend stats\n\s+mode http\n\s+bind 127\.0\.0\.1:8404/)
    // the admin API and dashboard over HTTPS, to the nodes' ops ports; nothing else of them
    expect(text).toMatch(/bind 127\.0\.0\.1:9443 ssl crt .* alpn http\/1\.1/)
    expect(text).toContain('acl api_path path_beg /api/ /dashboard/')
    expect(text).toContain('http-request deny status 404 unless api_path')
    expect(text).toContain('server culex-3 127.0.0.1:22003\n')
    for (const t of ['client', 'server']) {
      const s = Number(new RegExp(`timeout ${t} (\\d+)s`).exec(text)![1])
      expect(s).toBeGreaterThan(1.5 * 300)
    }
  })

  it('docker-compose.yml passes `docker-compose config`: redis with an AOF volume, three brokers, HAProxy with haproxy/ and the certs, the five public ports, every service restarted when it dies, brokers drained on stop', async () => {
    const { stdout } = await run('docker-compose', ['-f', join(REPO_ROOT, 'docker-compose.yml'), 'config'], { cwd: REPO_ROOT })
    expect(stdout).toMatch(/appendonly/)
    expect(stdout).toMatch(/redis-data:\/data/)
    for (const b of ['broker1', 'broker2', 'broker3']) expect(stdout).toContain(`${b}:`)
    for (const p of ['1883', '8883', '8443', '8404', '9443']) expect(stdout).toMatch(new RegExp(`published: ${p}|${p}:${p}`))
    expect(stdout).toMatch(/haproxy\.cfg:\/usr\/local\/etc\/haproxy\/haproxy\.cfg/)
    expect(stdout).toMatch(/certs:\/usr\/local\/etc\/haproxy\/certs/)
    // supervision: Docker restarts every service that dies (5, the 2 of profile "observability" and the 5 of profile "ha": docker-compose 1.29 lists them too); a stopping broker drains before Docker's SIGKILL
    expect(stdout.match(/restart: unless-stopped/g)?.length).toBe(12)
    expect(stdout.match(/CULEX_DRAIN_MS: ['"]?6000/g)?.length).toBe(3)
    expect(stdout.match(/stop_grace_period: 20s/g)?.length).toBe(3)
  })

  it('docker-compose --profile observability config: Prometheus scrapes every broker\'s ops port with its node id, Grafana is provisioned with ops/grafana/culex.json', async () => {
    const { stdout } = await run('docker-compose', ['-f', join(REPO_ROOT, 'docker-compose.yml'), '--profile', 'observability', 'config'], { cwd: REPO_ROOT })
    expect(stdout).toMatch(/prometheus:\n(?:.*\n)*?\s+profiles:\n\s+- observability/)
    expect(stdout).toMatch(/grafana:\n(?:.*\n)*?\s+profiles:\n\s+- observability/)
    expect(stdout).toMatch(/ops\/prometheus\/prometheus\.yml:\/etc\/prometheus\/prometheus\.yml/)
    expect(stdout).toMatch(/ops\/grafana\/provisioning:\/etc\/grafana\/provisioning/)
    expect(stdout).toMatch(/ops\/grafana\/culex\.json:\/var\/lib\/grafana\/dashboards\/culex\.json/)
    // each broker service is scraped under the node id it runs with
    const prom = readFileSync(join(REPO_ROOT, 'ops', 'prometheus', 'prometheus.yml'), 'utf8')
    for (const i of [1, 2, 3]) {
      expect(prom).toContain(`- targets: ["broker${i}:9100"]\n        labels: { node: culex-${i} }`)
      expect(stdout).toMatch(new RegExp(`broker${i}:\\n(?:.*\\n)*?\\s+CULEX_NODE_ID: culex-${i}`))
    }
    const provisioned = readFileSync(join(REPO_ROOT, 'ops', 'grafana', 'provisioning', 'dashboards', 'culex.yml'), 'utf8')
    expect(provisioned).toContain('path: /var/lib/grafana/dashboards')
  })

  it('docker-compose.yml profile "ha" (with docker/ha.env) passes `docker-compose config`: the primary, two replicas, three sentinels, brokers pointed at the sentinels', async () => {
    const { stdout } = await run('docker-compose', ['-f', join(REPO_ROOT, 'docker-compose.yml'), '--profile', 'ha', '--env-file', join(REPO_ROOT, 'docker', 'ha.env'), 'config'], { cwd: REPO_ROOT })
    for (const s of ['redis-replica1', 'redis-replica2', 'sentinel1', 'sentinel2', 'sentinel3']) expect(stdout).toContain(`${s}:`)
    expect(stdout.match(/--replicaof/g)?.length).toBe(2)
    expect(stdout.match(/sentinel\s+monitor\s+culex\s+172\.28\.0\.20\s+6379\s+2/g)?.length).toBe(3)
    expect(stdout.match(/CULEX_REDIS_SENTINELS: 172\.28\.0\.31:26379,172\.28\.0\.32:26379,172\.28\.0\.33:26379/g)?.length).toBe(3)
    expect(stdout.match(/CULEX_REDIS_MASTER_NAME: culex/g)?.length).toBe(3)
    // the node ignores an empty variable: no redis_url next to the sentinels
    expect(stdout.match(/CULEX_REDIS_URL: ''/g)?.length).toBe(3)
    expect(stdout.match(/restart: unless-stopped/g)?.length).toBe(12)
  })

  it('docker/Dockerfile is multi-stage, runs as a non-root user and checks /readyz', () => {
    const df = readFileSync(join(REPO_ROOT, 'docker', 'Dockerfile'), 'utf8')
    expect(df.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2)
    expect(df).toMatch(/^USER node$/m)
    expect(df).toMatch(/HEALTHCHECK[\s\S]*\/readyz/)
    expect(df).toMatch(/COPY --from=build/)
  })

  it('`culex cluster up` without redis-server or haproxy says what to install', async () => {
    const bin = tempDir('culex-path-') // a PATH with nothing but node
    symlinkSync(process.execPath, join(bin, 'node'))
    const p = spawnProc(process.execPath, [CLI, 'cluster', 'up', '--dir', tempDir()], { PATH: bin, CULEX_SYSTEM_BIN_DIRS: '' })
    const { code } = await p.exited
    expect(code).toBe(1)
    expect(p.err.join('')).toContain('redis-server and haproxy not found')
    expect(p.err.join('')).toContain('sudo apt-get install -y redis-server haproxy')
  })

  it('`culex cluster status` without a Redis URL and `culex cluster down` without a cluster say so', async () => {
    const dir = tempDir()
    const status = spawnProc(process.execPath, [CLI, 'cluster', 'status', '--dir', dir], { CULEX_REDIS_URL: '' })
    expect((await status.exited).code).toBe(2)
    expect(status.err.join('')).toMatch(/no Redis URL/)
    const down = spawnProc(process.execPath, [CLI, 'cluster', 'down', '--dir', dir])
    expect((await down.exited).code).toBe(1)
    expect(down.text()).toMatch(/nothing to stop/)
  })
})
