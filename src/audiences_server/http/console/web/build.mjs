// Builds the console's bundle into ../static (committed, so that the server needs no Node).
// `node build.mjs --check` builds in memory and fails when the committed files differ.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static");
const check = process.argv.includes("--check");

const result = await build({
  // main.js imports console.css: esbuild writes console.js and console.css beside it.
  entryPoints: { console: join(here, "src", "main.js") },
  outdir: out,
  entryNames: "[name]",
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  legalComments: "eof",
  charset: "utf8",
  write: !check,
  logLevel: "warning",
});

if (check) {
  const stale = result.outputFiles.filter((file) => {
    let committed = "";
    try { committed = readFileSync(file.path, "utf8"); } catch { return true; }
    return committed !== file.text;
  });
  if (stale.length) {
    console.error(`the committed console build is out of date: ${stale.map((f) => f.path).join(", ")};`
      + " run `make console` and commit static/");
    process.exit(1);
  }
}
