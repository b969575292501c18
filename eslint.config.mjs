// ESLint for Durox: typescript-eslint's type-checked rules on every TypeScript file, and the
// import-boundary rule that keeps the layers of docs/architecture.md pointing one way.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/ and the other layers each may import (its own folder is always allowed).
 * Arrows point down: core <- provider <- store <- postgres, pglite; runtime and client use the
 * provider contract and core; operator uses client; cli and dashboard use operator, client and a
 * store factory to connect; nothing imports demo. docs/architecture.md explains why.
 */
const LAYERS = {
  core: [],
  provider: ['core'],
  // Cron schedules: the schedule model, cron parsing and the schedule orchestration (pure code).
  schedules: ['core'],
  store: ['provider', 'core'],
  postgres: ['store', 'provider', 'core'],
  pglite: ['store', 'provider', 'core'],
  // ActivityContext hands activities a Client (the duroxide API), so runtime may use the client.
  runtime: ['client', 'schedules', 'provider', 'core'],
  client: ['schedules', 'provider', 'core'],
  observability: ['runtime', 'client', 'provider', 'core'],
  // The operator views open the store they show (a server or a PGlite data directory), so the CLI
  // and the dashboard connect through them and import no store themselves.
  operator: ['client', 'schedules', 'provider', 'core', 'store', 'postgres', 'pglite'],
  cli: ['operator', 'client', 'schedules', 'provider', 'core'],
  dashboard: ['operator', 'client', 'schedules', 'provider', 'core', 'observability'],
  // The durox executable composes the CLI with the dashboard's command; neither imports the other.
  bin: ['cli', 'dashboard', 'core'],
  demo: ['runtime', 'client', 'provider', 'core', 'postgres', 'pglite'],
};

/**
 * The one node:* module core may use: async_hooks observes the async resources an async
 * orchestration creates, so the engine can refuse non-durable ones (core/async-scope.ts). It
 * does no I/O.
 */
const CORE_ASYNC_SCOPE = 'src/core/async-scope.ts';

/** Narrower limits inside an allowed layer. */
const ONLY = {
  runtime: [
    {
      regex: '^\\.\\./client/(?!client$).*$',
      message: 'runtime uses only the Client class of src/client (ActivityContext.getClient); limits live in core.',
    },
  ],
};

const ALL_LAYERS = Object.keys(LAYERS);

/** A no-restricted-imports pattern matching a relative import of `layer` from a sibling folder of src/. */
const layerPattern = (layer) => ({
  regex: `^(\\.\\./)+${layer}(/.*)?$`,
  message: `src/${layer} is not a layer this folder may import (see the LAYERS table in eslint.config.mjs).`,
});

const boundaryConfigs = Object.entries(LAYERS)
  .map(([layer, allowed]) => {
    const forbidden = ALL_LAYERS.filter((other) => other !== layer && !allowed.includes(other));
    const patterns = [...forbidden.map(layerPattern), ...(ONLY[layer] ?? [])];
    if (layer === 'core') {
      patterns.push({
        regex: `^(node:.*|${builtinModules.filter((m) => !m.startsWith('_')).join('|')})(/.*)?$`,
        message: 'core does no I/O: it imports no node:* module.',
      });
    }
    const asyncScopeOnly =
      layer === 'core'
        ? [
            {
              regex: `^(node:(?!async_hooks$).*|${builtinModules.filter((m) => !m.startsWith('_') && m !== 'async_hooks').join('|')})(/.*)?$`,
              message: 'core does no I/O: async-scope.ts may import node:async_hooks only.',
            },
          ]
        : [];
    // no-restricted-imports sees static imports only; a lazy `import()` must keep to the layers too.
    const lazy =
      forbidden.length === 0
        ? []
        : [
            {
              selector: `ImportExpression[source.value=/^(\\.\\.\\/)+(${forbidden.join('|')})(\\/|$)/]`,
              message: `src/${layer} may not import these layers lazily either (see the LAYERS table in eslint.config.mjs).`,
            },
          ];
    const configs = [
      {
        name: `durox/boundaries/${layer}`,
        files: [`src/${layer}/**/*.ts`],
        ignores: layer === 'core' ? [CORE_ASYNC_SCOPE] : [],
        rules: { 'no-restricted-imports': ['error', { patterns }], 'no-restricted-syntax': ['error', ...lazy] },
      },
    ];
    if (layer === 'core') {
      configs.push({
        name: 'durox/boundaries/core-async-scope',
        files: [CORE_ASYNC_SCOPE],
        rules: {
          'no-restricted-imports': ['error', { patterns: [...forbidden.map(layerPattern), ...asyncScopeOnly] }],
          'no-restricted-syntax': ['error', ...lazy],
        },
      });
    }
    return configs;
  })
  .flat();

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'bench/.peers/**', 'test-output/**'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    name: 'durox/typescript',
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test() and describe() return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Handlers and provider methods are `async` without an `await` on purpose: a synchronous throw
      // then becomes a rejected promise, which is how the runtime records a failure.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    name: 'durox/tests',
    files: ['test/**/*.ts'],
    rules: {
      // Tests read orchestration outputs, histories and JSON bodies that the duroxide API types as
      // `any`, and assert on them: a cast before every assertion would add noise and no safety.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // Orchestrations that finish without scheduling anything are generators with no yield.
      'require-yield': 'off',
      // Tests throw strings, objects and null on purpose: how such failures are recorded is tested.
      '@typescript-eslint/only-throw-error': 'off',
    },
  },
  {
    name: 'durox/async-orchestration-tests',
    files: ['test/core/async-*.ts'],
    // These tests `await null` on purpose: a plain microtask hop between durable steps must not
    // change what an async orchestration records.
    rules: { '@typescript-eslint/await-thenable': 'off' },
  },
  {
    name: 'durox/dbos-peer',
    files: ['bench/peers/dbos-workload.ts'],
    rules: {
      // DBOS is loaded at run time from a cache outside node_modules, untyped, so that the build and the
      // package need no DBOS (bench/README.md); every use of it is therefore `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    name: 'durox/javascript',
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    name: 'durox/modules',
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  ...boundaryConfigs,
  {
    name: 'durox/boundaries/outside-src',
    files: ['test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)src/demo(/.*)?$', message: 'nothing imports the demo.' }] },
      ],
    },
  },
  {
    name: 'durox/boundaries/package-entry',
    files: ['src/index.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: ['cli', 'dashboard', 'demo', 'operator'].map((l) => ({
            regex: `^\\./${l}(/.*)?$`,
            message: `the package entry does not export src/${l}.`,
          })),
        },
      ],
    },
  },
);
