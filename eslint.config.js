// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// What producers may import of src/telemetry: the ports (types.ts) and the helpers written over
// @opentelemetry/api alone (spans.ts, trace-context.ts). The SDK, prom-client and winston stay
// behind them.
const TELEMETRY_IMPLEMENTATIONS = [
  "**/telemetry/*",
  "!**/telemetry/types.js",
  "!**/telemetry/spans.js",
  "!**/telemetry/trace-context.js",
  "!**/telemetry/server-spans.js",
];

/** Files under `files` may not import what `banned` matches. */
function layer(files, banned, message) {
  return [
    {
      files: [files],
      rules: {
        "no-restricted-imports": ["error", { patterns: [{ group: banned, message }] }],
      },
    },
  ];
}

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "node_modules/",
      "coverage/",
      ".data/",
      ".cache/",
      "bench/results/",
      "dist-bench/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  // The floors of STYLE.md: crdt <- store <- replication <- http and link, with src/telemetry beside them
  // (it may import crdt only); main.ts and node.ts wire everything.
  ...layer("src/crdt/**", ["../**"], "src/crdt is pure and imports nothing of ours"),
  ...layer("src/load/**", ["../**"], "the load generator is a CLI of its own: no other src import"),
  ...layer(
    "src/telemetry/**",
    ["**/replication/**", "**/http/**", "**/store/**", "../node.js", "../main.js"],
    "src/telemetry implements the ports of telemetry/types.ts; it imports no producer",
  ),
  ...layer(
    "src/store/**",
    ["**/replication/**", "**/http/**", ...TELEMETRY_IMPLEMENTATIONS, "../node.js"],
    "the store is below replication and http, and reports through telemetry/types.ts only",
  ),
  ...layer(
    "src/replication/**",
    ["**/http/**", ...TELEMETRY_IMPLEMENTATIONS, "../node.js"],
    "replication is below http, and reports through telemetry/types.ts (and the API-only span helpers)",
  ),
  ...layer(
    "src/http/**",
    [...TELEMETRY_IMPLEMENTATIONS, "**/link/**", "../node.js"],
    "http reports through telemetry/types.ts (and the API-only span helpers)",
  ),
  // The peer link is the Transport adapter beside http: it answers errors as the public API
  // does (http/errors.ts), and nothing of http imports it.
  ...layer(
    "src/link/**",
    [...TELEMETRY_IMPLEMENTATIONS, "**/store/**", "../node.js"],
    "the peer link reports through telemetry/types.ts (and the API-only span helpers)",
  ),
  {
    // The chart's replication check is a script too (a helm test Pod runs it).
    files: ["src/main.ts", "scripts/**", "bench/**", "test/**", "k8s/chart/*/files/**"],
    rules: { "no-console": "off" },
  },
  {
    // expect.any() and friends are typed `any` by vitest.
    files: ["test/**"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: "readonly",
        console: "readonly",
        fetch: "readonly",
        setTimeout: "readonly",
        AbortSignal: "readonly",
        URL: "readonly",
      },
    },
  },
);
