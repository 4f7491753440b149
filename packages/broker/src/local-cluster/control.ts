/**
 * The control socket of a running `culex cluster up`: `<dir>/control.sock`, a Unix socket (only
 * the folder's owner can use it), HTTP on top. Other commands run in the same folder ask the
 * supervisor to act on the processes it owns instead of signalling them behind its back:
 *   POST /restart   rolling restart (rolling.ts); the answer streams progress lines and ends
 *                   with `ok` or `failed: <why>`. 409 while another one runs.
 */
import { createHash } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** `<dir>/control.sock`; a Unix socket path is limited to ~107 bytes, so a deep folder gets one in the temp folder named after it */
export function controlSocket(dir: string): string {
  const inDir = join(resolve(dir), 'control.sock')
  if (Buffer.byteLength(inDir) <= 100) return inDir
  return join(tmpdir(), `culex-${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 16)}.sock`)
}

export interface ControlHandlers {
  restart(progress: (line: string) => void): Promise<void>
}

export async function startControl(dir: string, h: ControlHandlers): Promise<Server> {
  const path = controlSocket(dir)
  rmSync(path, { force: true }) // left by a supervisor that was killed
  let busy = false
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/restart') {
      res.writeHead(404).end('not found\n')
      return
    }
    if (busy) {
      res.writeHead(409).end('failed: a rolling restart is already running\n')
      return
    }
    busy = true
    res.writeHead(200, { 'content-type': 'text/plain' })
    h.restart((line) => res.write(`${line}\n`)).then(
      () => res.end('ok\n'),
      (err: Error) => res.end(`failed: ${err.message}\n`),
    ).finally(() => (busy = false))
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(path, ok)
  })
  return server
}

/** ask the supervisor of `dir` for a rolling restart; lines go to `out` as they come; true when it ended `ok` */
export function requestRestart(dir: string, out: (line: string) => void): Promise<boolean> {
  return new Promise((ok, fail) => {
    const req = request({ socketPath: controlSocket(dir), method: 'POST', path: '/restart' }, (res) => {
      let buf = ''
      let last = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buf += d
        const lines = buf.split('\n')
        buf = lines.pop()!
        for (const l of lines) {
          last = l
          out(l)
        }
      })
      res.on('end', () => {
        if (buf) out((last = buf))
        ok(res.statusCode === 200 && last === 'ok')
      })
      res.on('error', fail)
    })
    req.on('error', fail)
    req.end()
  })
}
