import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['**/dist/**', '**/dist-*/**', '**/node_modules/**', 'bench/results/**', '.culex/**', 'examples/browser/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', window: 'readonly', document: 'readonly', URL: 'readonly', setTimeout: 'readonly', Buffer: 'readonly' } },
  },
  {
    // the dashboard runs in a browser
    files: ['packages/broker/dashboard/**/*.js'],
    languageOptions: {
      globals: { sessionStorage: 'readonly', fetch: 'readonly', Event: 'readonly', URLSearchParams: 'readonly', clearTimeout: 'readonly', location: 'readonly' },
    },
  },
)
