#!/usr/bin/env node
// Entry point of the `aimass` command: runs the compiled CLI (npm ci builds it via `prepare`).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "services", "cli", "cli.js");
if (!existsSync(cli)) {
  console.error(`aimass: ${cli} is missing; run "npm run build" in ${root} first`);
  process.exit(1);
}
const { main } = await import(cli);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Every command closes what it opened; if a client library still holds a socket or timer,
// do not hang the shell (or a Kubernetes Job) on it.
setTimeout(() => process.exit(code), 3000).unref();
