/** Shared by the integration tests: build once, run the CLI, start brokers. */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const CLI = path.join(ROOT, 'packages/bench/dist/cli.js')
export const BROKER_CLI = path.join(ROOT, 'packages/broker/dist/cli.js')

function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Builds packages/bench when dist is missing or older than src (one test file at a time). */
export async function ensureBuilt(): Promise<void> {
  const src = path.join(ROOT, 'packages/bench/src')
  const lock = path.join(os.tmpdir(), 'culex-bench-build.lock')
  const fresh = (): boolean => existsSync(CLI) && statSync(CLI).mtimeMs >= newestMtime(src)
  for (let i = 0; i < 600 && !fresh(); i++) {
    try {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true }) // stale
      mkdirSync(lock)
    } catch {
      await new Promise((r) => setTimeout(r, 100)) // another test file is building
      continue
    }
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/bench'], { cwd: ROOT })
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
    break
  }
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function runCli(args: string[], timeoutMs = 40_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs a scenario with --json; returns the parsed report (stdout must be exactly one JSON document). */
export async function runJson(args: string[]): Promise<{ code: number; report: any; stderr: string }> {
  const r = await runCli([...args, '--json'])
  let report: any
  try {
    report = JSON.parse(r.stdout)
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.code}):\n${r.stdout.slice(0, 500)}\nstderr:\n${r.stderr.slice(0, 2000)}`)
  }
  return { code: r.code, report, stderr: r.stderr }
}

/** Brief runs for tests: a second of load after a short warmup. */
export const BRIEF = ['--duration', '1', '--warmup', '0.2', '--drain-timeout', '5']
