// Replays the Dockerfile without Docker: every stage gets a folder standing for its root
// filesystem; WORKDIR, COPY (from the build context through .dockerignore, or --from another
// stage) and the RUN steps that build the app (npm ci, tsc, pruning node_modules) run for real
// in those folders; steps that only touch the system (groupadd, useradd, npm cache clean) are
// skipped and listed. Then the final stage is checked the way the container would use it: the
// ENTRYPOINT answers --help and --version, every compiled service module loads with the
// production dependencies alone, onnxruntime-node runs the shop model, and no dev dependency or
// test file made it in. What it cannot show: the base image (node:20-bookworm-slim is assumed to
// be Node 20 on Debian, as here), file ownership, and the GPU image (its CUDA download needs the
// internet); Dockerfile.gpu is only checked for structure.
//
// About 40-60 s (two npm installs from the local cache and a tsc run). AIMASS_SKIP_DOCKERFILE=1
// skips it; scripts/check-dockerfile.sh runs it alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { REPO } from "../../helpers/deploy/kustomize.js";
import {
  copies,
  destinationOf,
  dockerignore,
  finalStage,
  last,
  readDockerfile,
  stage,
  type Stage,
} from "../../helpers/deploy/dockerfile.js";

const SKIPPED_COMMANDS = [/^groupadd\b/, /^useradd\b/, /^npm cache clean\b/];

interface Built {
  roots: Map<string, string>;
  skipped: string[];
  ran: string[];
}

/** Runs the stages in order; returns each stage's root folder. */
function replay(stages: Stage[], work: string): Built {
  const roots = new Map<string, string>();
  const skipped: string[] = [];
  const ran: string[] = [];
  const ignored = dockerignore();
  for (const s of stages) {
    const root = join(work, s.name);
    mkdirSync(root, { recursive: true });
    let workdir = "/";
    const env: Record<string, string> = {};
    const at = (p: string) => join(root, posix.resolve(workdir, p));
    let copyIndex = 0;
    const stageCopies = copies(s);
    for (const ins of s.instructions) {
      switch (ins.keyword) {
        case "WORKDIR":
          workdir = posix.resolve(workdir, ins.args.trim());
          mkdirSync(join(root, workdir), { recursive: true });
          break;
        case "ENV": {
          for (const m of ins.args.matchAll(/(\w+)=(\S+)/g)) env[m[1] ?? ""] = m[2] ?? "";
          break;
        }
        case "COPY": {
          const c = stageCopies[copyIndex++];
          assert.ok(c);
          for (const src of c.sources) {
            const dest = join(root, destinationOf(c, src));
            if (c.from !== undefined) {
              const fromRoot = roots.get(c.from);
              assert.ok(fromRoot, `COPY --from=${c.from}: no such earlier stage`);
              const from = join(fromRoot, posix.resolve("/", src));
              assert.ok(existsSync(from), `COPY --from=${c.from} ${src}: missing in that stage`);
              copyInto(from, dest, () => false);
            } else {
              assert.ok(!src.includes("*"), "COPY globs are not replayed");
              const from = join(REPO, src);
              assert.ok(existsSync(from), `COPY ${src}: missing in the build context`);
              assert.ok(!ignored(src), `COPY ${src}: excluded by .dockerignore`);
              copyInto(from, dest, (abs) => ignored(relative(REPO, abs).split("\\").join("/")));
            }
          }
          break;
        }
        case "RUN": {
          for (const step of ins.args.split("&&").map((x) => x.trim())) {
            if (SKIPPED_COMMANDS.some((r) => r.test(step))) {
              skipped.push(step);
              continue;
            }
            runStep(step, at("."), env);
            ran.push(step);
          }
          break;
        }
        case "USER":
        case "EXPOSE":
        case "ENTRYPOINT":
        case "CMD":
        case "ARG":
        case "HEALTHCHECK":
        case "LABEL":
          break;
        default:
          throw new Error(`${ins.keyword} (line ${ins.line}) is not replayed: teach dockerfile.test.ts`);
      }
    }
    roots.set(s.name, root);
  }
  return { roots, skipped, ran };
}

/** COPY semantics: a folder's contents go into dest, a file becomes dest. */
function copyInto(from: string, dest: string, excluded: (abs: string) => boolean): void {
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(from, dest, { recursive: true, filter: (src) => !excluded(src) });
}

function runStep(step: string, cwd: string, env: Record<string, string>): void {
  const words = step.split(/\s+/);
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, {
      cwd,
      env: { ...cleanEnv(), ...env, npm_config_update_notifier: "false" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 300_000,
    });
  if (words[0] === "npm" && words[1] === "ci") {
    // From the local npm cache (npm ci ran for this checkout), never the network if avoidable.
    run("npm", [...words.slice(1), "--prefer-offline"]);
  } else if (words[0] === "node" && words[1]?.startsWith("patches/")) {
    run(process.execPath, words.slice(1));
  } else if (words[0] === "npx" && words[1] === "tsc") {
    run(join(REPO, "node_modules", ".bin", "tsc"), words.slice(2));
  } else if (words[0] === "rm" && words[1] === "-rf") {
    for (const p of words.slice(2)) {
      assert.ok(
        !p.startsWith("/") && !p.includes(".."),
        `rm -rf ${p}: only paths below WORKDIR are replayed`,
      );
      assert.ok(existsSync(join(cwd, p)), `rm -rf ${p}: nothing there (stale path?)`);
      rmSync(join(cwd, p), { recursive: true, force: true });
    }
  } else {
    throw new Error(`RUN step "${step}" is not replayed: teach dockerfile.test.ts`);
  }
}

/** This process' environment without npm's npm_* variables (set when run from an npm script). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? allFiles(p) : [p];
  });
}

test(
  "the Dockerfile's steps, replayed without Docker, produce a runnable image",
  { skip: process.env.AIMASS_SKIP_DOCKERFILE === "1" ? "AIMASS_SKIP_DOCKERFILE=1" : false, timeout: 600_000 },
  () => {
    const df = readDockerfile("Dockerfile");
    const work = mkdtempSync(join(tmpdir(), "aimass-dockerfile-"));
    try {
      // Module resolution climbs parent folders: nothing above the replay may offer node_modules.
      for (let d = work; d !== dirname(d); d = dirname(d))
        assert.ok(!existsSync(join(dirname(d), "node_modules")));
      const { roots, skipped, ran } = replay(df.stages, work);
      assert.deepEqual(
        skipped.map((s) => s.split(" ")[0]),
        ["groupadd", "useradd", "npm"],
        "only user creation and the npm cache clean are skipped",
      );
      assert.ok(
        ran.some((r) => r.startsWith("npm ci --ignore-scripts")),
        "build stage installs",
      );
      assert.ok(
        ran.some((r) => r.startsWith("npx tsc")),
        "build stage compiles",
      );
      assert.ok(
        ran.some((r) => r.startsWith("npm ci --omit=dev")),
        "runtime stage installs production deps",
      );

      const runtime = finalStage(df);
      const root = roots.get(runtime.name) ?? "";
      const entry = JSON.parse(last(runtime, "ENTRYPOINT") ?? "[]") as string[];
      assert.deepEqual(entry, ["node", "/app/bin/aimass.js"]);
      const app = join(root, "app");
      const env = { ...cleanEnv(), NODE_ENV: "production" };
      const aimass = (...args: string[]) =>
        execFileSync("node", [join(root, entry[1] ?? ""), ...args], { cwd: app, env, encoding: "utf8" });

      const help = aimass("--help");
      assert.match(help, /aimass — large models as a service on Kafka/);
      for (const c of ["predict", "topics create", "smoke"]) assert.ok(help.includes(c), `--help lists ${c}`);
      const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
        version: string;
        devDependencies: Record<string, string>;
      };
      assert.equal(aimass("--version").trim(), pkg.version);
      assert.match(aimass("predict", "--help"), /--config[\s\S]*--metrics-port/);

      // Every compiled module loads with the production dependencies (a dev-only import fails here).
      const modules = allFiles(join(app, "dist", "services"))
        .filter((f) => f.endsWith(".js") && !f.endsWith(join("inference", "worker.js")))
        .map((f) => relative(app, f));
      assert.ok(modules.length > 20, `${modules.length} modules`);
      const loader = `for (const m of ${JSON.stringify(modules)}) await import("./" + m); console.log("loaded");`;
      const loaded = execFileSync("node", ["--input-type=module", "-e", loader], {
        cwd: app,
        env,
        encoding: "utf8",
      });
      assert.match(loaded, /loaded/);

      // onnxruntime-node (native, pruned to Linux) runs the shop model from /app/models.
      const infer = `
        import ort from "onnxruntime-node";
        const s = await ort.InferenceSession.create("models/shop-propensity/1/model.onnx");
        const x = new ort.Tensor("float32", new Float32Array(16).fill(0.5), [2, 8]);
        const out = await s.run({ [s.inputNames[0]]: x });
        console.log(JSON.stringify(out[s.outputNames[0]].dims));`;
      const dims = execFileSync("node", ["--input-type=module", "-e", infer], {
        cwd: app,
        env,
        encoding: "utf8",
      });
      assert.equal(dims.trim(), "[2,1]");

      // package-lock.json marks what only the dev dependencies need with "dev": true.
      const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
        packages: Record<string, { dev?: boolean }>;
      };
      const devOnly = Object.entries(lock.packages).filter(
        ([p, e]) => p.startsWith("node_modules/") && e.dev,
      );
      assert.ok(devOnly.some(([p]) => p === "node_modules/typescript"));
      for (const [p] of devOnly) assert.ok(!existsSync(join(app, p)), `dev-only ${p} is in the image`);
      for (const dep of Object.keys(pkg.devDependencies).filter(
        (d) => lock.packages[`node_modules/${d}`]?.dev,
      ))
        assert.ok(!existsSync(join(app, "node_modules", dep)), `dev dependency ${dep} is in the image`);
      assert.ok(!existsSync(join(app, "dist", "test")), "compiled tests are in the image");
      assert.ok(!existsSync(join(app, "test")), "test sources are in the image");
      const bins = join(app, "node_modules", "onnxruntime-node", "bin", "napi-v6");
      assert.deepEqual(readdirSync(bins).sort(), ["linux"], "only Linux onnxruntime binaries");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);

test("Dockerfile.gpu: CUDA 12 runtime base, CUDA provider installed, same user and entrypoint", () => {
  const cpu = readDockerfile("Dockerfile");
  const gpu = readDockerfile("Dockerfile.gpu");
  const runtime = finalStage(gpu);
  assert.match(runtime.base, /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
  const deps = stage(gpu, "deps");
  const install = deps.instructions
    .filter((i) => i.keyword === "RUN")
    .map((i) => i.args)
    .join(" && ");
  assert.match(install, /npm ci --omit=dev --ignore-scripts/);
  assert.match(install, /npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12/);
  assert.match(install, /libonnxruntime_providers_cuda\.so/);
  assert.ok(
    copies(runtime).some((c) => c.from === "deps" && c.sources.includes("/app/node_modules")),
    "the runtime takes node_modules with the CUDA provider from the deps stage",
  );
  assert.ok(copies(runtime).some((c) => c.from === "node" && c.sources.includes("/usr/local/bin/node")));
  assert.equal(stage(gpu, "node").base, stage(cpu, "build").base, "the same Node build as the CPU image");
  for (const keyword of ["USER", "ENTRYPOINT", "CMD"])
    assert.equal(last(runtime, keyword), last(finalStage(cpu), keyword), keyword);
  // The application files are the CPU image's (install-time files aside: the GPU image
  // installs, and patches, node_modules in its deps stage).
  const fromContext = (s: Stage) =>
    copies(s)
      .filter((c) => c.from === undefined || c.from === "build")
      .flatMap((c) => c.sources.map((src) => `${c.from ?? ""}:${src}->${destinationOf(c, src)}`))
      .filter((x) => !/:(\/app\/)?(package\.json|package-lock\.json|\.npmrc|patches)->/.test(x))
      .sort();
  assert.deepEqual(fromContext(runtime), fromContext(finalStage(cpu)));
  const steps = (s: Stage) => s.instructions.map((i) => `${i.keyword} ${i.args}`);
  assert.deepEqual(steps(stage(gpu, "build")), steps(stage(cpu, "build")), "the same build stage");
});
