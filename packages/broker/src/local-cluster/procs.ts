/** Small process helpers for the local cluster: find binaries, spawn to log files, stop in order. */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, openSync, closeSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { delimiter, join } from 'node:path'
import { alive } from './state.js'

export const INSTALL_LINE = 'sudo apt-get install -y redis-server haproxy'

/**
 * Where `bin` is: PATH first, then the sbin folders Debian installs haproxy in, which are not on
 * a Debian user's PATH (CULEX_SYSTEM_BIN_DIRS, colon separated, replaces that list).
 */
export function which(bin: string): string | undefined {
  const system = (process.env.CULEX_SYSTEM_BIN_DIRS ?? '/usr/local/sbin:/usr/sbin:/sbin').split(delimiter)
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...system]) {
    if (!dir) continue
    const p = join(dir, bin)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* next */
    }
  }
  return undefined
}

/** start a process in its own process group (Ctrl-C reaches only the supervisor, which stops them in order), output appended to a log file */
export function spawnLogged(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(logFile, 'a')
  try {
    return spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env })
  } finally {
    closeSync(fd)
  }
}

/** is pid alive and running a program whose command line contains `name`? (guards against reused pids) */
export function aliveAs(pid: number | undefined, name: string): boolean {
  if (!alive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(name)
  } catch {
    return true // no /proc: trust kill(0)
  }
}

export async function waitExit(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (alive(pid)) {
    if (Date.now() > end) return false
    await sleep(50)
  }
  return true
}

/** SIGTERM (or `signal`; none: the process was signalled already), then SIGKILL after `graceMs` */
export async function stopPid(pid: number | undefined, graceMs: number, signal: NodeJS.Signals | null = 'SIGTERM'): Promise<void> {
  if (!pid || !alive(pid)) return
  try {
    if (signal) process.kill(pid, signal)
  } catch {
    return
  }
  if (await waitExit(pid, graceMs)) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    /* gone */
  }
  await waitExit(pid, 2000)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** a band of ports [from, from + size) */
export interface PortBand {
  from: number
  size: number
}
/**
 * Where `cluster up` picks its Redis and Sentinel ports: below the kernel's ephemeral range
 * (32768-60999), whose ports a port-0 probe would get and which the nodes (started with port 0)
 * and every outgoing connection also draw from, so it could be taken before redis-server binds
 * it. The band below it, 20000-25999, is left to the tests (test/helpers/ports.ts): a port a test
 * hands to `cluster up` on its command line, unbound until HAProxy starts, is never one the
 * supervisor picks for Redis meanwhile.
 */
export const SUPERVISOR_PORTS: PortBand = { from: 26000, size: 6000 }

/** ports this process picked, or was told are someone's: never picked (again) */
const taken = new Set<number>()

/** ports already promised (e.g. HAProxy's, from the command line): freePort passes them over */
export function reservePorts(ports: Iterable<number>): void {
  for (const p of ports) taken.add(p)
}

/**
 * A free port for redis-server or redis-sentinel, picked at random in `band` (SUPERVISOR_PORTS),
 * never one this process picked before: the picks of one `cluster up` (a primary, replicas,
 * sentinels) are all free when checked but bound only later, so a repeat would clash.
 */
export async function freePort(host = '127.0.0.1', band: PortBand = SUPERVISOR_PORTS): Promise<number> {
  for (;;) {
    const port = band.from + Math.floor(Math.random() * band.size)
    if (taken.has(port)) continue
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, host, () => srv.close(() => resolve(true)))
    })
    if (!free) continue
    taken.add(port)
    return port
  }
}

/** rejects with a clear message when host:port cannot be bound */
export async function assertPortFree(host: string, port: number, what: string, flag: string): Promise<void> {
  const srv = createServer()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot use port ${port} for ${what} on ${host}: ${err.code === 'EADDRINUSE' ? 'already in use' : err.message} (choose another with ${flag})`)),
    )
    srv.listen(port, host, resolve)
  })
  await new Promise((r) => srv.close(r))
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: string, abort?: () => string | undefined): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return
    const why = abort?.()
    if (why) throw new Error(why)
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`)
    await sleep(100)
  }
}

/** a PING to a Redis port without a client library */
export async function redisPing(host: string, port: number): Promise<boolean> {
  const { connect } = await import('node:net')
  return new Promise((resolve) => {
    const s = connect(port, host)
    let buf = ''
    s.setTimeout(1000, () => {
      s.destroy()
      resolve(false)
    })
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d) => {
      buf += d.toString()
      if (buf.includes('\r\n')) {
        s.destroy()
        resolve(buf.startsWith('+PONG'))
      }
    })
    s.on('error', () => resolve(false))
  })
}

/** size of a file, 0 when it does not exist */
export function fileSize(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

