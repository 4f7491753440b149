#!/usr/bin/env node
// Summarises a V8 CPU profile (node --cpu-prof) of a Culex node: self time by package/module and by
// function, as shares of the busy (non-idle) time. Usage: node scripts/profile-summary.mjs FILE.cpuprofile [top]
import { readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node scripts/profile-summary.mjs FILE.cpuprofile [top]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
const selfTime = new Map()
profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))

/** node_modules package, Culex source file (dist path), or V8's own name for the frame */
function moduleOf(frame) {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url)
  if (pkg) return pkg[1]
  if (frame.url.includes('/dist/')) return `culex:${frame.url.split('/dist/').pop()}`
  if (frame.url.startsWith('node:')) return frame.url
  return frame.url ? frame.url.split('/').pop() : frame.functionName
}

let total = 0
let idle = 0
const byModule = new Map()
const byFunction = new Map()
for (const [id, t] of selfTime) {
  const frame = nodes.get(id).callFrame
  total += t
  if (frame.functionName === '(idle)') {
    idle += t
    continue
  }
  const mod = moduleOf(frame)
  byModule.set(mod, (byModule.get(mod) ?? 0) + t)
  const fn = `${frame.functionName || '(anonymous)'} (${mod})`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t)
}
const busy = total - idle
const show = (title, map) => {
  console.log(`\n${title}`)
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
}
console.log(`${file}: ${(total / 1e6).toFixed(1)} s profiled, ${((100 * idle) / total).toFixed(1)}% idle; shares below are of the ${(busy / 1e6).toFixed(1)} s busy`)
show('by module', byModule)
show('by function (self time)', byFunction)
