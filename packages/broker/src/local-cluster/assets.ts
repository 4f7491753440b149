/**
 * Files of the repository the local cluster uses: the HAProxy template and the
 * certificate script. Found by walking up from this module (dist/local-cluster/
 * in a checkout), or from CULEX_HOME when set.
 */
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Assets {
  root: string
  haproxyTemplate: string
  makeCerts: string
  /** the built CLI nodes are started with */
  cli: string
}

export function findAssets(): Assets {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url))
  const starts = [process.env.CULEX_HOME, dirname(fileURLToPath(import.meta.url)), process.cwd()].filter((s): s is string => !!s)
  for (const start of starts) {
    let dir = resolve(start)
    for (;;) {
      const template = join(dir, 'haproxy', 'haproxy.cfg.template')
      const certs = join(dir, 'certs.example', 'make-certs.sh')
      if (existsSync(template) && existsSync(certs)) return { root: dir, haproxyTemplate: template, makeCerts: certs, cli }
      const up = dirname(dir)
      if (up === dir) break
      dir = up
    }
  }
  throw new Error('cannot find haproxy/haproxy.cfg.template and certs.example/make-certs.sh (run from a Culex checkout or set CULEX_HOME)')
}
