// A Dockerfile reader for the tests: stages and instructions (continuations joined, comments
// dropped, global ARG defaults substituted into FROM), COPY arguments, the .dockerignore
// matcher, and the image ↔ repository path mapping of a stage's COPY-from-context steps.
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { REPO } from "./kustomize.js";

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  path: string;
  stages: Stage[];
}

export function readDockerfile(name: string): Dockerfile {
  const path = join(REPO, name);
  return { path, stages: parseDockerfile(readFileSync(path, "utf8"), path) };
}

export function parseDockerfile(text: string, where = "Dockerfile"): Stage[] {
  const lines = text.split("\n");
  const instructions: Instruction[] = [];
  let current: Instruction | undefined;
  lines.forEach((raw, i) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (current === undefined && line.trim() === "")) return;
    if (current === undefined) {
      const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
      if (!m) throw new Error(`${where}:${i + 1}: cannot parse "${line}"`);
      current = { keyword: (m[1] ?? "").toUpperCase(), args: m[2] ?? "", line: i + 1 };
    } else {
      current.args += ` ${line.trim()}`;
    }
    if (current.args.endsWith("\\")) {
      current.args = current.args.slice(0, -1).trimEnd();
    } else {
      instructions.push(current);
      current = undefined;
    }
  });
  if (current !== undefined) throw new Error(`${where}: the last instruction ends with a continuation`);

  const globals = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args.trim());
      if (!m) throw new Error(`${where}:${ins.line}: FROM ${ins.args}`);
      const base = (m[1] ?? "").replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => {
        const v = globals.get(a ?? b);
        if (v === undefined) throw new Error(`${where}:${ins.line}: ARG ${a ?? b} has no default`);
        return v;
      });
      stages.push({ name: m[2] ?? String(stages.length), base, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`${where}:${ins.line}: ${ins.keyword} before FROM`);
      const [k, ...v] = ins.args.trim().split("=");
      if (k) globals.set(k, v.join("="));
    } else {
      stages[stages.length - 1]?.instructions.push(ins);
    }
  }
  return stages;
}

export function stage(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((x) => x.name === name);
  if (!s) throw new Error(`${df.path}: no stage ${name}`);
  return s;
}

export const finalStage = (df: Dockerfile): Stage => {
  const s = df.stages[df.stages.length - 1];
  if (!s) throw new Error(`${df.path}: no stages`);
  return s;
};

export interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  /** The WORKDIR in effect. */
  workdir: string;
}

/** The COPY instructions of a stage, in order, with their flags and WORKDIR. */
export function copies(s: Stage): Copy[] {
  let workdir = "/";
  const out: Copy[] = [];
  for (const ins of s.instructions) {
    if (ins.keyword === "WORKDIR") workdir = posix.resolve(workdir, ins.args.trim());
    if (ins.keyword !== "COPY") continue;
    const words = ins.args.trim().split(/\s+/);
    const flags = words.filter((w) => w.startsWith("--"));
    const paths = words.filter((w) => !w.startsWith("--"));
    const dest = paths.pop();
    if (dest === undefined || paths.length === 0)
      throw new Error(`COPY ${ins.args}: needs a source and a dest`);
    const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
    for (const f of flags) {
      if (!/^--(from|chown|chmod|link)(=|$)/.test(f)) throw new Error(`COPY flag ${f} is not understood`);
    }
    out.push({ ...(from !== undefined ? { from } : {}), sources: paths, dest, workdir });
  }
  return out;
}

/** Where a COPY puts one of its sources, in the image. */
export function destinationOf(c: Copy, source: string): string {
  const dest = posix.resolve(c.workdir, c.dest);
  const intoDir = c.dest.endsWith("/") || c.sources.length > 1;
  return intoDir ? posix.join(dest, posix.basename(source)) : dest;
}

/**
 * The repository path an image path comes from, through the stage's COPY-from-context steps
 * (`COPY models ./models` with WORKDIR /app: /app/models/x → <repo>/models/x); undefined when no
 * such step covers it.
 */
export function repoPathOf(s: Stage, imagePath: string): string | undefined {
  for (const c of copies(s).reverse()) {
    if (c.from !== undefined) continue;
    for (const src of c.sources) {
      const dest = destinationOf(c, src);
      if (imagePath === dest || imagePath.startsWith(`${dest}/`)) {
        const repoPath = join(REPO, src, imagePath.slice(dest.length));
        return existsSync(join(REPO, src)) ? repoPath : undefined;
      }
    }
  }
  return undefined;
}

/** The arguments of the stage's last instruction of this keyword. */
export function last(s: Stage, keyword: string): string | undefined {
  return s.instructions
    .filter((i) => i.keyword === keyword)
    .pop()
    ?.args.trim();
}

/** .dockerignore as Docker reads it: patterns from the context root, `*` within one segment, `**` across. */
export function dockerignore(): (relPath: string) => boolean {
  const patterns = readFileSync(join(REPO, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  if (patterns.some((p) => p.startsWith("!")))
    throw new Error(".dockerignore exceptions (!) are not supported by this reader");
  const regexes = patterns.map((p) => {
    const body = posix
      .normalize(p.replace(/^\/+/, ""))
      .split(/(\*\*|\*|\?)/)
      .map((part) =>
        part === "**"
          ? ".*"
          : part === "*"
            ? "[^/]*"
            : part === "?"
              ? "[^/]"
              : part.replace(/[.+^${}()|[\]\\]/g, "\\$&"),
      )
      .join("");
    return new RegExp(`^${body}$`);
  });
  return (relPath) => {
    const parts = relPath.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (regexes.some((r) => r.test(prefix))) return true;
    }
    return false;
  };
}
