// ESLint flat config (npm run lint): src/, test/, bench/, scripts/.
//
// The recommended sets of ESLint and typescript-eslint, plus a few rules that
// catch real bugs rather than style; tsc already checks types, unused names
// and unused parameters (tsconfig: strict, noUnusedLocals/Parameters).
// TypeScript files are linted with type information (the project service
// reads tsconfig.json) for the promise rules only: a promise nobody awaits or
// handles, a promise where a callback's result is ignored, await on a value
// that is not a promise. Type information roughly doubles the run (~22 s of
// CPU instead of ~10 s on this tree; --concurrency does not help: each worker
// builds its own program).
//
// Left out on purpose (they flagged only correct code here):
// no-promise-executor-return (`new Promise((r) => setTimeout(r, ms))` is the
// idiom), no-unmodified-loop-condition (loops on a flag a callback sets).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const TS = ['**/*.ts', '**/*.mts', '**/*.cts'];
const JS = ['**/*.js', '**/*.mjs', '**/*.cjs'];

export default defineConfig([
  globalIgnores(['node_modules/', 'dist/', 'dist-check/', 'build/', 'prebuilds/', '.tap/', '.fuzz/', 'bench/.work/', 'bin/', 'native/', 'plugin/', 'docs/']),

  {
    files: [...TS, ...JS],
    extends: [js.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Bugs, not style.
      'array-callback-return': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-constructor-return': 'error',
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unreachable-loop': 'error',
      // A catch that ignores its error keeps the name for the reader.
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },

  {
    files: JS,
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },

  {
    files: TS,
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/await-thenable': 'error',
      // tap waits for its subtests itself (t.test's promise needs no await).
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: ['test', 'skip', 'todo', 'only'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },

  {
    // Tests match control characters on purpose: that hostile text comes out escaped.
    files: ['test/**'],
    rules: { 'no-control-regex': 'off' },
  },
]);
