/**
 * Redis MONITOR on a plain socket: every command Redis runs, as its arguments and where it came
 * from (`127.0.0.1:<port>`, or `lua` for a script's calls). ioredis' `monitor()` failed once in CI
 * with "Command queue state error": it enters its monitoring mode only a microtask after MONITOR's
 * +OK, so a monitored line in the same read as the +OK was taken for a reply to no command.
 */
import { connect } from 'node:net'
import { once } from 'node:events'

const LINE = /^\+\S+ \[\d+ ([^\]]+)\] (.*)$/
const ARG = /"((?:[^"\\]|\\.)*)"/g
const ESC: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' }

/** one MONITOR line's arguments, unquoted as Redis quoted them (sdscatrepr) */
export function monitorArgs(quoted: string): string[] {
  return [...quoted.matchAll(ARG)].map((m) => m[1]!.replace(/\\(x[0-9a-f]{2}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (ESC[e] ?? e))))
}

/** resolves once Redis confirmed MONITOR; `close` ends it */
export async function monitorRedis(port: number, onCommand: (args: string[], source: string) => void): Promise<{ close(): void }> {
  const s = connect(port, '127.0.0.1')
  await once(s, 'connect')
  let buf = ''
  let confirmed: () => void
  const ok = new Promise<void>((resolve) => (confirmed = resolve))
  s.setEncoding('latin1')
  s.on('data', (chunk: string) => {
    buf += chunk
    let nl: number
    while ((nl = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 2)
      if (line === '+OK') confirmed()
      const m = LINE.exec(line)
      if (m) onCommand(monitorArgs(m[2]!), m[1]!)
    }
  })
  s.write('MONITOR\r\n')
  await ok
  return { close: () => s.destroy() }
}
