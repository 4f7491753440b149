// Rewrites the README's config table from the schema: `npm run docs`.
import { readFileSync, writeFileSync } from 'node:fs'
import { configTable } from '../packages/broker/dist/config/table.js'

const path = new URL('../README.md', import.meta.url)
const text = readFileSync(path, 'utf8')
const out = text.replace(
  /<!-- config-table:start -->[\s\S]*<!-- config-table:end -->/,
  `<!-- config-table:start -->\n${configTable()}\n<!-- config-table:end -->`,
)
writeFileSync(path, out)
