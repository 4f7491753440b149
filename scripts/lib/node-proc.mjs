// What the measuring scripts (node-cpu, bus-cpu, v5-cost, v5-roundtrip) share: a free loopback
// port, a Culex node of a given broker CLI started on loopback ports and waited for (its /readyz),
// a process's CPU from /proc/PID/stat, and stopping a process.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** a port free on 127.0.0.1 right now */
export const freePort = () =>
  new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => r(p))
    })
  })

/** µs per clock tick of /proc/PID/stat's utime and stime */
export const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))

/** [utime, stime] of a process in clock ticks (fields 14-15 of /proc/PID/stat) */
export function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return [Number(f[11]), Number(f[12])]
}

/** utime + stime of a process in µs */
export const cpuUs = (pid) => {
  const [u, s] = cpuTicks(pid)
  return (u + s) * TICK_US
}

/**
 * A Culex node of `cli` (its dist/cli.js) on free loopback ports, anonymous clients allowed and no
 * connect limits (all bench load comes from one address), ready once its /readyz answers.
 * `args`: more `start` options (e.g. --redis-url); `pre`: node options (e.g. --cpu-prof).
 */
export async function startNode(cli, { args = [], pre = [] } = {}) {
  const [m, w, h] = [await freePort(), await freePort(), await freePort()]
  const env = { ...process.env, CULEX_ALLOW_ANONYMOUS: 'true', CULEX_MAX_CONNECTS_PER_S_PER_IP: '0', CULEX_MAX_CONNECTIONS: '0' }
  const proc = spawn(process.execPath, [...pre, cli, 'start', '--host', '127.0.0.1', '--mqtt-port', `${m}`, '--ws-port', `${w}`, '--http-port', `${h}`, '--log-level', 'warn', ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] })
  for (let i = 0; ; i++) {
    try {
      if ((await globalThis.fetch(`http://127.0.0.1:${h}/readyz`)).ok) break
    } catch {
      // not listening yet
    }
    if (i > 300 || proc.exitCode !== null) throw new Error(`the node of ${cli} did not get ready`)
    await sleep(100)
  }
  return { proc, port: m, httpPort: h, url: `mqtt://127.0.0.1:${m}` }
}

/** stops processes with `signal` and waits for them to exit */
export async function stopAll(procs, signal = 'SIGINT') {
  await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => { p.on('exit', r); p.kill(signal) }))))
}

/** a redis-server on a free loopback port, without persistence: { proc, url } */
export async function startRedis() {
  const port = await freePort()
  const proc = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', `${port}`, '--bind', '127.0.0.1'], { stdio: 'ignore' })
  await sleep(300)
  return { proc, url: `redis://127.0.0.1:${port}` }
}
