// Build: npx vite build --config web/vite.config.mjs   (from the repository root) → dist/web/, served under /dashboard/
// Dev:   npx vite --config web/vite.config.mjs         (proxies the API to CLICKTRAIL_DEV_API, default http://localhost:8080)
import process from "node:process";
import { fileURLToPath, URL } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));
const api = process.env.CLICKTRAIL_DEV_API ?? "http://localhost:8080";

export default defineConfig({
  root: here,
  base: "/dashboard/",
  publicDir: "public",
  // Preact with the automatic JSX runtime, without a framework plugin
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: { alias: { react: "preact/compat", "react-dom": "preact/compat" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // every supported browser has modulepreload; the polyfill would only add bytes
    modulePreload: { polyfill: false },
    // never inline assets as data: URLs into JS/CSS; keep the bundle CSP-friendly and cacheable
    assetsInlineLimit: 0,
    sourcemap: true,
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      "/api": api,
      "/healthz": api,
      "/docs": api,
      "/openapi.json": api,
    },
  },
});
