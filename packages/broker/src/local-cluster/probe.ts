/** What the local-cluster supervisor reads from its children: node logs, /readyz, HAProxy's stats CSV. */
import { openSync, readSync, closeSync, fstatSync, readFileSync } from 'node:fs'

/** the `culex ready` line a node logs once it listens, looked for after byte `from` of its log */
export function readyLine(log: string, from = 0): { listeners: Record<string, string> } | undefined {
  let text: string
  try {
    const fd = openSync(log, 'r')
    try {
      const size = fstatSync(fd).size
      const buf = Buffer.alloc(Math.max(0, size - from))
      readSync(fd, buf, 0, buf.length, from)
      text = buf.toString('utf8')
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"culex ready"')) continue
    try {
      return JSON.parse(line) as { listeners: Record<string, string> }
    } catch {
      /* partial */
    }
  }
  return undefined
}

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

/** HAProxy's status of each server of the culex backends (culex_mqtt, culex_ws): id -> ['UP', 'DOWN', ...] */
export async function haproxyServers(csvUrl: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  try {
    const res = await fetch(csvUrl, { signal: AbortSignal.timeout(2000) })
    const text = await res.text()
    const [head, ...rows] = text.replace(/^# /, '').trim().split('\n')
    const cols = head!.split(',')
    const px = cols.indexOf('pxname')
    const sv = cols.indexOf('svname')
    const st = cols.indexOf('status')
    for (const r of rows.map((row) => row.split(','))) {
      if ((r[px] !== 'culex_mqtt' && r[px] !== 'culex_ws') || r[sv] === 'BACKEND' || r[sv] === 'FRONTEND') continue
      out.set(r[sv]!, [...(out.get(r[sv]!) ?? []), r[st]!])
    }
  } catch {
    /* not answering yet */
  }
  return out
}
