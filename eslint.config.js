// `npm run lint`: ESLint's and typescript-eslint's recommended rules over everything TypeScript in
// the repository, run in CI before the tests. Formatting is not linted (the code follows one style by
// hand; see spec/STYLE.md); the rules here catch bugs, not layout.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'oclif.manifest.json', 'bin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    rules: {
      // `_`-prefixed parameters are the way to say "unused on purpose" (aedes' callback shapes).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
)
