// ESLint for the labextension's TypeScript: the same rules as the viewer package it depends on
// (medai_lab/widgets/js/eslint.config.mjs; its Babel parser comes from that package's modules).
import { typescriptRules } from "../medai_lab/widgets/js/eslint.config.mjs";

export default typescriptRules(["src/**/*.ts"], ["lib/**", "node_modules/**"]);
