#!/usr/bin/env node
// The `culex` command. A committed shim, so npm links it at install time; the code is built
// into dist/ by `npm ci` (the root prepare script) or `npm run build`.
import('../dist/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('culex: not built yet; run `npm run build` in the repository root')
    process.exit(1)
  }
  throw err
})
