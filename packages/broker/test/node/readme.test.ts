/** The README documents every config key exactly as the schema defines it. */
import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { configTable } from '../../src/config/table.js'

it('README config table matches the schema (run `npm run docs` after changing a key)', () => {
  const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8')
  const table = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme)?.[1]
  expect(table).toBe(configTable())
})
