#!/usr/bin/env node
// Entry point of the `aimass` command: runs the compiled CLI (npm ci builds it via `prepare`).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "services", "control", "cli.js");
if (!existsSync(cli)) {
  console.error(`aimass: ${cli} is missing; run "npm run build" in ${root} first`);
  process.exit(1);
}
const { main } = await import(cli);
process.exitCode = await main(process.argv.slice(2));
