// Builds the front-end assets into bins/server/static/ (committed, embedded by the server):
// app.css from Tailwind + DaisyUI, HTMX and uPlot copied from node_modules, and our app.js.
// Prints raw and gzip sizes, and the total the start page loads.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(web, "..", "bins", "server", "static");
const require = createRequire(import.meta.url);
const pkgDir = (name) => dirname(require.resolve(`${name}/package.json`));

mkdirSync(out, { recursive: true });

const tailwind = join(pkgDir("@tailwindcss/cli"), "dist", "index.mjs");
execFileSync(process.execPath, [tailwind, "-i", join(web, "src", "app.css"), "-o", join(out, "app.css"), "--minify"], {
  cwd: web,
  stdio: "inherit",
});

const copies = [
  [join(pkgDir("htmx.org"), "dist", "htmx.min.js"), "htmx.min.js"],
  [join(pkgDir("uplot"), "dist", "uPlot.iife.min.js"), "uplot.min.js"],
  [join(pkgDir("uplot"), "dist", "uPlot.min.css"), "uplot.min.css"],
  [join(web, "src", "app.js"), "app.js"],
  [join(web, "src", "favicon.svg"), "favicon.svg"],
];
for (const [from, to] of copies) copyFileSync(from, join(out, to));

// What bins/server/templates/base.html loads on every page, the start page included.
const startPage = ["app.css", "uplot.min.css", "app.js", "htmx.min.js", "uplot.min.js", "favicon.svg"];
let raw = 0;
let gz = 0;
for (const name of startPage) {
  const bytes = readFileSync(join(out, name));
  const zipped = gzipSync(bytes, { level: 6 }).length;
  raw += bytes.length;
  gz += zipped;
  console.log(`${name.padEnd(16)} ${String(bytes.length).padStart(8)} B raw ${String(zipped).padStart(8)} B gzip`);
}
console.log(`${"start page".padEnd(16)} ${String(raw).padStart(8)} B raw ${String(gz).padStart(8)} B gzip`);
