// ESLint for the viewer's TypeScript. TypeScript 7 (the native compiler pinned here) has no
// JavaScript API, which typescript-eslint needs; the Babel parser reads TS syntax instead, and
// types, undefined names and unused locals stay with `tsc --noEmit` (strict, noUnusedLocals).
import js from "@eslint/js";
import babelParser from "@babel/eslint-parser";
import globals from "globals";

/** The rules for TypeScript files `files` (labext/eslint.config.mjs uses them too). */
export function typescriptRules(files, ignores) {
  return [
    { ignores },
    {
      files,
      languageOptions: {
        parser: babelParser,
        parserOptions: {
          requireConfigFile: false,
          babelOptions: {
            babelrc: false,
            configFile: false,
            presets: ["@babel/preset-typescript"],
            parserOpts: { plugins: ["typescript"] },
          },
        },
        globals: { ...globals.browser },
      },
      rules: {
        ...js.configs.recommended.rules,
        "no-undef": "off", // tsc checks names, including types the Babel AST does not scope
        "no-unused-vars": "off", // tsc's noUnusedLocals (types and overloads are not seen here)
        "no-redeclare": "off", // TS overloads / declaration merging
        eqeqeq: ["error", "always"],
        "no-var": "error",
        "prefer-const": ["error", { destructuring: "all" }],
        "no-console": ["error", { allow: ["warn", "error"] }],
        "no-implicit-coercion": ["error", { allow: ["!!"] }],
      },
    },
  ];
}

export default typescriptRules(["src/**/*.ts"], ["dist/**", "node_modules/**", "dev/**"]);
