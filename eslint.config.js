// @ts-check
/**
 * ESLint for every TypeScript and JavaScript file of the repository: `npm run lint` (zero warnings).
 *
 * Type-aware (typescript-eslint `strictTypeChecked` + `stylisticTypeChecked`, so no `any`, no
 * unsafe use of untyped values, no floating promises). The project service gives each `.ts` file
 * the nearest `tsconfig.json` that includes it, so every directory with TypeScript needs one:
 * guest-js/tsconfig.json, scripts/tsconfig.json, and, when they land, examples/tauri-app/,
 * e2e/ and bench/ (a `.ts` file outside every tsconfig is reported as an error, not skipped).
 * Plain `.js` files get the same rules minus the type-aware ones.
 */
import eslint from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  globalIgnores([
    "**/node_modules/",
    "**/dist/",
    "**/target/",
    ".tools/",
    "go-backend/",
    // Generated from the .proto files by `npm run gen`; regenerated, never edited.
    "**/generated/",
    "guest-js/src/gen/",
    "guest-js/test/gen/",
    "examples/tauri-app/src/gen/",
    // Build output of guest-js (its `tsup` IIFE), like dist/.
    "guest-js/api-iife.js",
    // The Rust side of the example app (its `gen/` holds Tauri's generated schemas).
    "examples/tauri-app/src-tauri/",
    "bench/out/",
    "e2e/screenshots/",
  ]),

  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },

  {
    name: "anysync/typescript",
    files: ["**/*.{ts,mts,cts,tsx,js,mjs,cjs}"],
    extends: [eslint.configs.recommended, tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Matches `verbatimModuleSyntax`: types are imported and exported as types.
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/consistent-type-exports": "error",
      "@typescript-eslint/no-import-type-side-effects": "error",
      // Numbers read naturally in messages; null, undefined, objects and `any` still do not.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "all", caughtErrorsIgnorePattern: "^_" },
      ],
      // `() => doSomething()` for a void callback is idiomatic; returning a void value elsewhere is not.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
      // node:test's describe/it/test return promises that the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite", "before", "after"] },
          ],
        },
      ],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-console": "off",
    },
  },

  {
    name: "anysync/javascript",
    files: ["**/*.{js,mjs,cjs}"],
    extends: [tseslint.configs.disableTypeChecked],
  },

  {
    name: "anysync/browser",
    files: ["guest-js/src/**", "examples/tauri-app/src/**"],
    languageOptions: { globals: { ...globals.browser } },
  },

  {
    name: "anysync/node",
    files: [
      "scripts/**",
      "e2e/**",
      "bench/**",
      "guest-js/scripts/**",
      "guest-js/test/**",
      "**/*.config.{ts,mts,cts,js,mjs,cjs}",
    ],
    languageOptions: { globals: { ...globals.node } },
  },

  {
    name: "anysync/tests",
    files: ["**/test/**", "**/*.test.ts", "e2e/**"],
    rules: {
      // Tests build fixtures with non-null assertions and inspect rejections of any shape.
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
);
