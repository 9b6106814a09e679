// The deployment files (k8s/ overlays as rendered, docker-compose.yml, Dockerfile) and the
// commands the README and docs show use the ports, paths, env names, commands, options,
// config keys, topics and names that the code actually reads, serves and uses. Every
// expectation is taken from the code or the pipeline config, not restated here: the CLI's own
// command tree (parsing for real), endpointsFromEnv, startHttp, parsePipelineConfig, the
// transactional-id and group-id templates in the services' source.
//
// The monitoring copies (k8s/base/monitoring) must equal k8s/monitoring; to refresh them:
//   AIMASS_SYNC_MONITORING=1 node --test dist/test/unit/deploy/consistency.test.js
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import { basename, join, relative } from "node:path";
import { Registry } from "prom-client";
import { parse as parseYaml, parseDocument, stringify } from "yaml";
import { parseOptions, type OptionSpecs } from "../../../load-tests/lib/args.js";
import { DEFAULT_ENDPOINTS, endpointsFromEnv } from "../../../services/common/env.js";
import { parsePipelineConfig } from "../../../services/common/config/load.js";
import { startHttp } from "../../../services/common/http.js";
import {
  REPO,
  arr,
  at,
  clone,
  isObject,
  keyOf,
  kindOf,
  kustomizeBuild,
  nameOf,
  obj,
  overlays,
  str,
  type Json,
  type JsonObject,
} from "../../helpers/deploy/kustomize.js";
import {
  copies,
  destinationOf,
  finalStage,
  last,
  readDockerfile,
  repoPathOf,
} from "../../helpers/deploy/dockerfile.js";
import { commandTree, findCommand, runCli } from "../cli/harness.js";

const execFileAsync = promisify(execFile);
const read = (p: string): string => readFileSync(join(REPO, p), "utf8");
const yamlFile = (p: string): Json => parseYaml(read(p), { merge: true }) as Json;
const RULES = "k8s/monitoring/alerts/aimass-rules.yaml";
const RULE_COPY = "k8s/base/monitoring/prometheusrule.yaml";
const DASHBOARDS = "k8s/monitoring/dashboards";
const DASHBOARD_COPIES = "k8s/base/monitoring/dashboards";

// Refresh the copies first, so the overlays below render them.
if (process.env.AIMASS_SYNC_MONITORING === "1") {
  for (const f of readdirSync(join(REPO, DASHBOARD_COPIES))) rmSync(join(REPO, DASHBOARD_COPIES, f));
  for (const f of readdirSync(join(REPO, DASHBOARDS)).filter((f) => f.endsWith(".json")))
    copyFileSync(join(REPO, DASHBOARDS, f), join(REPO, DASHBOARD_COPIES, f));
  const text = read(RULE_COPY);
  const header = text.slice(0, text.search(/^[^#\n]/m));
  const doc = parseDocument(text);
  doc.setIn(["spec", "groups"], doc.createNode(at(yamlFile(RULES), "groups")));
  const body = stringify(doc.toJS(), { lineWidth: 0 });
  writeFileSync(join(REPO, RULE_COPY), header + body);
}

const rendered = new Map(overlays().map((dir) => [basename(dir), kustomizeBuild(dir)]));
const dockerfile = readDockerfile("Dockerfile");
const runtime = finalStage(dockerfile);
const compose = obj(yamlFile("docker-compose.yml"), "docker-compose.yml");
const composeServices = obj(compose.services, "services");

function each(kind: string, objects: JsonObject[]): JsonObject[] {
  return objects.filter((o) => kindOf(o) === kind);
}

function find(objects: JsonObject[], kind: string, name: string): JsonObject {
  const o = objects.find((x) => kindOf(x) === kind && nameOf(x) === name);
  assert.ok(o, `no ${kind} ${name}`);
  return o;
}

function labels(o: JsonObject, path = "metadata.labels"): Record<string, string> {
  const l = at(o, path);
  return isObject(l)
    ? (Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)])) as Record<string, string>)
    : {};
}

const matches = (selector: Record<string, string>, l: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => l[k] === v);

/** The aimass workloads: Deployments whose pods are labelled app.kubernetes.io/name=aimass. */
function aimassDeployments(objects: JsonObject[]): JsonObject[] {
  return each("Deployment", objects).filter(
    (d) => labels(d, "spec.template.metadata.labels")["app.kubernetes.io/name"] === "aimass",
  );
}

const containerOf = (d: JsonObject): JsonObject => obj(at(d, "spec.template.spec.containers.0"), keyOf(d));
const argsOf = (c: JsonObject): string[] => arr(c.args, "args").map((a) => str(a, "args[]"));

const composeAimass = (): Array<[string, JsonObject]> =>
  Object.entries(composeServices)
    .map(([name, s]) => [name, obj(s, name)] as [string, JsonObject])
    .filter(([, s]) => String(s.image).includes("AIMASS_IMAGE"));

/** ${VAR:-default} → default (Compose interpolation with nothing set). */
const interpolate = (s: string): string => s.replace(/\$\{\w+:-([^}]*)\}/g, "$1");

/** The pipeline config a pod runs: the ConfigMap key mounted at --config, as text. */
function mountedConfig(objects: JsonObject[], d: JsonObject): { path: string; text: string } {
  const args = argsOf(containerOf(d));
  const path = args[args.indexOf("--config") + 1];
  assert.ok(path, `${keyOf(d)}: --config`);
  const mounts = arr(containerOf(d).volumeMounts, "volumeMounts").map((m) => obj(m, "volumeMount"));
  const mount = mounts.find((m) => path.startsWith(`${String(m.mountPath)}/`));
  assert.ok(mount, `${keyOf(d)}: nothing mounted at ${path}`);
  assert.equal(mount.subPath, undefined);
  const volume = arr(at(d, "spec.template.spec.volumes"), "volumes")
    .map((v) => obj(v, "volume"))
    .find((v) => v.name === mount.name);
  const cmName = str(at(volume, "configMap.name"), `${keyOf(d)}: volume ${String(mount.name)} configMap`);
  assert.equal(at(volume, "configMap.items"), undefined);
  const cm = find(objects, "ConfigMap", cmName);
  const key = path.slice(String(mount.mountPath).length + 1);
  return { path, text: str(obj(cm.data, `ConfigMap ${cmName} data`)[key], `ConfigMap ${cmName} key ${key}`) };
}

/** A pipeline config written for the image, parsed with the image's paths mapped to this repo. */
function parseForImage(text: string, source: string): { config: JsonObject; imageModelPaths: string[] } {
  const raw = obj(parseYaml(text) as Json, source);
  const toRepo = (p: string): string => {
    const local = repoPathOf(runtime, p);
    assert.ok(local, `${source}: ${p} is not inside a directory the Dockerfile copies into the image`);
    return local;
  };
  const mapped = clone(raw);
  if (typeof mapped.modelRepository === "string") mapped.modelRepository = toRepo(mapped.modelRepository);
  for (const m of arr(mapped.models, "models")) {
    if (isObject(m) && typeof m.path === "string") m.path = toRepo(m.path);
  }
  const config = parsePipelineConfig(mapped, source, {});
  const json = obj(JSON.parse(JSON.stringify(config)) as Json, "config");
  const modelsDir = str(repoPathOf(runtime, "/app/models"), "/app/models");
  const imageModelPaths = arr(json.models, "models").map((m) => {
    const p = str(at(m, "path"), "model path");
    assert.ok(existsSync(p), `${source}: model ${p} does not exist`);
    assert.ok(
      p.startsWith(`${modelsDir}/`),
      `${source}: model ${p} is not under models/ (the image's /app/models)`,
    );
    return `/app/models/${relative(modelsDir, p)}`;
  });
  return { config: json, imageModelPaths };
}

const exampleConfig = (): JsonObject => {
  const source = join(REPO, "examples/shop/pipeline.yaml");
  return obj(
    JSON.parse(JSON.stringify(parsePipelineConfig(yamlFile("examples/shop/pipeline.yaml"), source, {}))),
    "x",
  );
};

function pipelineOf(overlay: string): JsonObject {
  const objects = rendered.get(overlay) ?? [];
  const predictor = find(objects, "Deployment", "aimass-predictor");
  const { text } = mountedConfig(objects, predictor);
  return parseForImage(text, "/etc/aimass/pipeline.yaml").config;
}

const num = (v: Json | undefined, what: string): number => {
  assert.equal(typeof v, "number", what);
  return v as number;
};

// ---------------------------------------------------------------------------------------------

test("container args are real commands whose options parse with the CLI's own specs", async () => {
  const runs: Array<[string, string[]]> = [];
  for (const [overlay, objects] of rendered) {
    for (const d of aimassDeployments(objects))
      runs.push([`${overlay} ${nameOf(d)}`, argsOf(containerOf(d))]);
  }
  for (const [name, s] of composeAimass()) {
    if (s.entrypoint !== undefined) continue; // the load generator: below
    runs.push([`compose ${name}`, arr(s.command, `${name} command`).map((a) => interpolate(str(a, name)))]);
  }
  assert.ok(runs.length >= 8, "predictor and feature writer in both overlays, 4 compose services");
  for (const [where, argv] of runs) {
    // The CLI itself parses them: an unknown command or option, a stray argument or a bad
    // value is exit 2 with commander's message.
    const run = await runCli(argv);
    assert.equal(run.code, 0, `${where}: "${argv.join(" ")}" does not parse:\n${run.err}`);
    assert.equal(run.calls.length, 1, `${where}: runs one command`);
    const call = run.calls[0];
    assert.ok(call && call.command !== "smoke", `${where}: a command that reads --config`);
    assert.equal(typeof call.options.config, "string", `${where}: --config`);
  }
});

// ---------------------------------------------------------------------------------------------
// Commands in the README and docs

interface DocCommand {
  where: string;
  /** The words after `aimass`. */
  words: string[];
  /** A line of a code block (to run), not a code span in prose (which may leave options out). */
  block: boolean;
}

/** Shell words: double or single quotes group, the quotes themselves go. */
const shellWords = (text: string): string[] =>
  [...text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? "");

/** Every `aimass …` the README and docs show: code spans, and command lines in code blocks. */
function documentedCommands(): DocCommand[] {
  const docs = readdirSync(join(REPO, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const found: DocCommand[] = [];
  for (const file of ["README.md", ...docs]) {
    const lines = read(file).split("\n");
    let fenced = false;
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i] ?? "";
      const where = `${file}:${i + 1}`;
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        continue;
      }
      if (fenced) {
        while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i] ?? ""}`;
        const m = /^\s*(?:\$ |npx )?aimass(\s.*)?$/.exec(line);
        if (m) found.push({ where, words: shellWords((m[1] ?? "").replace(/\s#.*$/, "")), block: true });
      } else {
        for (const span of line.matchAll(/`(?:npx )?aimass(\s[^`]*)?`/g))
          found.push({ where, words: shellWords(span[1] ?? ""), block: false });
      }
    }
  }
  return found;
}

/** A code block's command line with nothing to fill in is one to run as it stands. */
const isConcrete = ({ words, block }: DocCommand): boolean =>
  block && !words.some((w) => /[<>[\]()|…]|\.\.\./.test(w));

test("every aimass command the README and docs show exists, with the options they give it", async () => {
  const root = commandTree();
  const documented = documentedCommands();
  assert.ok(documented.length >= 20, `found ${documented.length} documented commands`);
  let concrete = 0;
  for (const doc of documented) {
    const { where, words } = doc;
    // The command: leading words naming commands ("models", "list|deploy"), each spelled right.
    let commands = [root];
    let i = 0;
    for (; i < words.length && /^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(words[i] ?? ""); i++) {
      const names = (words[i] ?? "").split("|");
      if (commands.every((c) => c.commands.length === 0)) break; // a leaf: the rest are its words
      commands = commands.flatMap((c) =>
        names.map((n) => {
          const sub = findCommand(c, [n]);
          assert.ok(sub, `${where}: "aimass ${words.slice(0, i + 1).join(" ")}" is not an aimass command`);
          return sub;
        }),
      );
    }
    // Its options: each one documented exists on the command (on some sub-command of a group).
    const leaves = (c: (typeof commands)[number]): Array<(typeof commands)[number]> =>
      c.commands.length === 0 ? [c] : c.commands.flatMap(leaves);
    for (const word of words.slice(i)) {
      const flag = /^[[(]*(-{1,2}[A-Za-z][\w-]*)/.exec(word)?.[1];
      if (flag === undefined || flag === "--help" || flag === "-h") continue;
      for (const c of commands) {
        const known = [c, ...leaves(c)].flatMap((x) => x.options.flatMap((o) => [o.long, o.short]));
        if (c === root) known.push("--version", "-V");
        assert.ok(known.includes(flag), `${where}: "aimass ${words.join(" ")}": no option ${flag}`);
      }
    }
    // A concrete command line parses as it stands: the CLI runs exactly one command.
    if (isConcrete(doc) && commands.every((c) => c !== root)) {
      concrete++;
      const run = await runCli(words);
      assert.equal(run.code, 0, `${where}: "aimass ${words.join(" ")}" does not parse:\n${run.err}`);
      assert.equal(run.calls.length, 1, `${where}: "aimass ${words.join(" ")}" runs no command`);
    }
  }
  assert.ok(concrete >= 10, `${concrete} concrete command lines`);
});

test("the load generator's arguments parse with its own options and target the input topic", () => {
  const load = obj(composeServices.load, "load");
  assert.deepEqual(load.profiles, ["load"]);
  const entry = arr(load.entrypoint, "entrypoint").map((a) => str(a, "entrypoint"));
  assert.equal(entry[0], "node");
  const script = str(entry[1], "script");
  // dist/ comes from the build stage: the runtime stage copies dist/load-tests across.
  const copied = copies(runtime).filter((c) => c.from !== undefined);
  assert.ok(
    copied.some((c) => c.sources.some((src) => script.startsWith(`${destinationOf(c, src)}/`))),
    `${script} is not copied into the image`,
  );
  assert.match(script, /^\/app\/dist\/load-tests\/produce-events\.js$/);
  const help = execFileSync("node", [join(REPO, "dist/load-tests/produce-events.js"), "--help"], {
    encoding: "utf8",
  });
  const specs: OptionSpecs = Object.fromEntries(
    [...help.matchAll(/^\s+--([a-z-]+)(\s+<(n|value)>)?/gm)].map((m) => [
      m[1] ?? "",
      { type: m[3] === "n" ? "number" : m[3] === "value" ? "string" : "boolean", description: "" },
    ]),
  );
  assert.ok("topic" in specs);
  const argv = arr(load.command, "command").map((a) => interpolate(str(a, "command")));
  // The script's own parser: unknown options and stray arguments are errors.
  const options = parseOptions(argv, specs);
  assert.equal(options.string("topic"), at(exampleConfig(), "input.topic"));
});

test("probe and healthcheck paths are the ones startHttp serves, with the right meaning", async () => {
  const state = { alive: true, ready: true };
  const server = await startHttp(
    0,
    new Registry(),
    { alive: () => state.alive, ready: () => ({ ready: state.ready, reason: "test" }) },
    "127.0.0.1",
  );
  try {
    const port = (server.address() as AddressInfo).port;
    const status = async (path: string, alive: boolean, ready: boolean) => {
      Object.assign(state, { alive, ready });
      return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    };
    const liveness = new Set<string>();
    const readiness = new Set<string>();
    for (const objects of rendered.values()) {
      for (const d of aimassDeployments(objects)) {
        const c = containerOf(d);
        liveness.add(str(at(c, "livenessProbe.httpGet.path"), "liveness"));
        readiness.add(str(at(c, "readinessProbe.httpGet.path"), "readiness"));
        for (const probe of ["livenessProbe", "readinessProbe"]) {
          const p = at(c, `${probe}.httpGet.port`);
          assert.ok(p === "metrics" || p === metricsPortOf(c), `${keyOf(d)} ${probe} port`);
        }
      }
    }
    for (const [name, s] of composeAimass()) {
      const test = at(s, "healthcheck.test");
      if (test === undefined) continue;
      const m = /http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/.exec(arr(test, "test").join(" "));
      assert.ok(m, `${name}: healthcheck URL`);
      const argv = arr(s.command, "command").map((a) => String(a));
      assert.equal(
        m[1],
        argv[argv.indexOf("--metrics-port") + 1],
        `${name}: healthcheck port = --metrics-port`,
      );
      liveness.add(m[2] ?? "");
      // Run the healthcheck command itself against the server: exit 0 alive, non-zero not.
      const cmd = arr(test, "test").map((a) => str(a, `${name} healthcheck`));
      assert.deepEqual(cmd.slice(0, 3), ["CMD", "node", "-e"]);
      const script = str(cmd[3], "script").replace(`127.0.0.1:${m[1]}`, `127.0.0.1:${port}`);
      Object.assign(state, { alive: true, ready: false });
      await execFileAsync("node", ["-e", script]);
      Object.assign(state, { alive: false, ready: true });
      await assert.rejects(
        execFileAsync("node", ["-e", script]),
        `${name}: healthcheck passes a dead worker`,
      );
    }
    assert.ok(liveness.size > 0 && readiness.size > 0);
    for (const path of liveness) {
      assert.equal(await status(path, true, false), 200, `${path} is served and ignores readiness`);
      assert.equal(await status(path, false, true), 503, `${path} reports liveness`);
    }
    for (const path of readiness) {
      assert.equal(await status(path, false, true), 200, `${path} is served and ignores liveness`);
      assert.equal(await status(path, true, false), 503, `${path} reports readiness`);
    }
    assert.equal(await status("/metrics", true, true), 200);
    assert.equal(await status("/nothing", true, true), 404);
  } finally {
    server.close();
  }
});

function metricsPortOf(c: JsonObject): number {
  const args = argsOf(c);
  const i = args.indexOf("--metrics-port");
  assert.ok(i >= 0, "--metrics-port");
  return Number(args[i + 1]);
}

test("--metrics-port = containerPort `metrics` = Service port = what the ServiceMonitor scrapes", () => {
  const jobs = new Set(
    [...read("k8s/monitoring/prometheus.yml").matchAll(/job_name:\s*(\S+)/g)].map((m) => m[1]),
  );
  for (const [overlay, objects] of rendered) {
    const monitors = each("ServiceMonitor", objects);
    assert.equal(monitors.length, 1);
    const sm = monitors[0] as JsonObject;
    const smSelector = labels(sm, "spec.selector.matchLabels");
    const smPorts = arr(at(sm, "spec.endpoints"), "endpoints").map((e) => at(e, "port"));
    for (const d of aimassDeployments(objects)) {
      const c = containerOf(d);
      const port = metricsPortOf(c);
      const named = arr(c.ports, "ports").find((p) => isObject(p) && p.name === "metrics");
      assert.equal(at(named, "containerPort"), port, `${overlay} ${nameOf(d)}: containerPort`);
      const podLabels = labels(d, "spec.template.metadata.labels");
      const services = each("Service", objects).filter((s) => matches(labels(s, "spec.selector"), podLabels));
      assert.equal(services.length, 1, `${overlay} ${nameOf(d)}: one Service selects it`);
      const svc = services[0] as JsonObject;
      const sp = arr(at(svc, "spec.ports"), "ports").find((p) => isObject(p) && p.name === "metrics");
      assert.equal(at(sp, "port"), port, `${nameOf(svc)}: port`);
      assert.ok(
        [port, "metrics"].includes(at(sp, "targetPort") as number | string),
        `${nameOf(svc)}: targetPort`,
      );
      assert.equal(at(svc, "spec.publishNotReadyAddresses"), true, "not-ready workers are scraped too");
      assert.ok(matches(smSelector, labels(svc)), `the ServiceMonitor selects ${nameOf(svc)}`);
      assert.ok(smPorts.includes("metrics"), "the ServiceMonitor scrapes the port named metrics");
      assert.ok(
        jobs.has(nameOf(svc)),
        `job ${nameOf(svc)} (the Service name) is a job of k8s/monitoring/prometheus.yml`,
      );
    }
    const global = obj(at(yamlFile("k8s/monitoring/prometheus.yml"), "global"), "global");
    assert.equal(at(sm, "spec.endpoints.0.interval"), global.scrape_interval);
  }
});

// ---------------------------------------------------------------------------------------------
// Environment

/** Env names the code reads, each proven: endpointsFromEnv changes its answer, or the source reads it. */
function provenEnvNames(): Set<string> {
  const names = new Set<string>();
  const base = JSON.stringify(endpointsFromEnv({}));
  for (const name of ["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "REDIS_URL"]) {
    if (JSON.stringify(endpointsFromEnv({ [name]: "probe-value:1" })) !== base) names.add(name);
  }
  assert.equal(names.size, 3, "endpointsFromEnv reads KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL");
  assert.match(read("services/common/logger.ts"), /process\.env\.AIMASS_LOG_LEVEL\b/);
  names.add("AIMASS_LOG_LEVEL");
  return names;
}

test("every env name the manifests and compose set is read by aimass, and each reference resolves", () => {
  const proven = provenEnvNames();
  for (const [overlay, objects] of rendered) {
    for (const d of aimassDeployments(objects)) {
      const env = arr(containerOf(d).env, "env").map((e) => obj(e, "env"));
      const names = env.map((e) => str(e.name, "env name"));
      for (const n of names) assert.ok(proven.has(n), `${overlay} ${nameOf(d)}: ${n} is not read by aimass`);
      for (const n of ["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "REDIS_URL"])
        assert.ok(names.includes(n), `${overlay} ${nameOf(d)}: ${n} missing`);
      assert.equal(containerOf(d).envFrom, undefined, "env names are listed one by one");
      for (const e of env) envValue(objects, e);
    }
  }
  for (const [name, s] of composeAimass()) {
    for (const n of Object.keys(obj(s.environment, `${name} environment`)))
      assert.ok(proven.has(n), `compose ${name}: ${n} is not read by aimass`);
  }
});

/** The value of an env entry, following configMapKeyRef / secretKeyRef to the rendered object. */
function envValue(objects: JsonObject[], e: JsonObject): string {
  if (typeof e.value === "string") return e.value;
  const cm = at(e, "valueFrom.configMapKeyRef");
  if (isObject(cm)) {
    const data = obj(find(objects, "ConfigMap", str(cm.name, "configMapKeyRef.name")).data, "data");
    return str(data[str(cm.key, "key")], `ConfigMap ${String(cm.name)} key ${String(cm.key)}`);
  }
  const sk = at(e, "valueFrom.secretKeyRef");
  if (isObject(sk)) {
    const secret = find(objects, "Secret", str(sk.name, "secretKeyRef.name"));
    const key = str(sk.key, "key");
    const plain = at(secret, "stringData");
    if (isObject(plain) && typeof plain[key] === "string") return plain[key];
    const b64 = isObject(secret.data) ? secret.data[key] : undefined;
    return Buffer.from(str(b64, `Secret ${String(sk.name)} key ${key}`), "base64").toString("utf8");
  }
  throw new Error(`env ${String(e.name)}: no value`);
}

test("the endpoints point at the Kafka, registry and Redis the stack runs", () => {
  for (const [overlay, objects] of rendered) {
    const kafka = each("Kafka", objects);
    assert.equal(kafka.length, 1);
    const k = kafka[0] as JsonObject;
    for (const d of aimassDeployments(objects)) {
      const env = Object.fromEntries(
        arr(containerOf(d).env, "env").map((e) => [
          str(at(e, "name"), "name"),
          envValue(objects, obj(e, "env")),
        ]),
      );
      const ep = endpointsFromEnv(env);
      for (const broker of ep.kafkaBrokers) {
        const [host, port] = broker.split(":");
        assert.equal(
          host,
          `${nameOf(k)}-kafka-bootstrap`,
          `${overlay}: KAFKA_BROKERS names Strimzi's bootstrap Service`,
        );
        const listener = arr(at(k, "spec.kafka.listeners"), "listeners").find(
          (l) => isObject(l) && l.port === Number(port),
        );
        assert.ok(listener, `${overlay}: no listener on ${port}`);
        // aimass has no SASL/TLS settings (docs/configuration.md): the listener must not need them.
        assert.equal(
          at(listener, "authentication"),
          undefined,
          `${overlay}: listener ${port} wants authentication`,
        );
        assert.equal(at(listener, "tls"), false, `${overlay}: listener ${port} wants TLS`);
      }
      const redis = new URL(ep.redisUrl);
      const svc = find(objects, "Service", redis.hostname);
      assert.ok(
        arr(at(svc, "spec.ports"), "ports").some((p) => at(p, "port") === Number(redis.port || 6379)),
        `${overlay}: REDIS_URL port`,
      );
      assert.ok(
        each("StatefulSet", objects).some((s) =>
          matches(labels(svc, "spec.selector"), labels(s, "spec.template.metadata.labels")),
        ),
        `${overlay}: the redis Service selects the Redis pods`,
      );
      assert.equal(
        new URL(ep.schemaRegistryUrl).pathname,
        new URL(DEFAULT_ENDPOINTS.schemaRegistryUrl).pathname,
      );
    }
  }
  // Compose: the brokers are the INTERNAL advertised listener; the other hosts are services.
  const kafka = obj(at(composeServices.kafka, "environment"), "kafka environment");
  const advertised = str(kafka.KAFKA_ADVERTISED_LISTENERS, "advertised");
  for (const [name, s] of composeAimass()) {
    const env = Object.fromEntries(
      Object.entries(obj(s.environment, "environment")).map(([k, v]) => [k, interpolate(String(v))]),
    );
    const ep = endpointsFromEnv(env);
    for (const broker of ep.kafkaBrokers) {
      assert.ok(
        advertised.split(",").includes(`INTERNAL://${broker}`),
        `compose ${name}: ${broker} is advertised`,
      );
    }
    const redis = new URL(ep.redisUrl);
    assert.ok(redis.hostname in composeServices, `compose ${name}: REDIS_URL host is a service`);
    const registry = new URL(ep.schemaRegistryUrl);
    assert.ok(registry.hostname in composeServices, `compose ${name}: SCHEMA_REGISTRY_URL host is a service`);
    const mapped = arr(at(composeServices[registry.hostname], "ports"), "ports").map((p) => String(p));
    assert.ok(
      mapped.some((p) => p.endsWith(`:${registry.port}`)),
      "the registry listens on the URL's port",
    );
    assert.equal(registry.pathname, new URL(DEFAULT_ENDPOINTS.schemaRegistryUrl).pathname);
  }
});

// ---------------------------------------------------------------------------------------------
// Pipeline config

test("the mounted pipeline config is --config, parses, and its models are in the image", () => {
  for (const [overlay, objects] of rendered) {
    for (const d of aimassDeployments(objects)) {
      const { text } = mountedConfig(objects, d);
      const { imageModelPaths } = parseForImage(text, `${overlay} ${nameOf(d)} /etc/aimass/pipeline.yaml`);
      assert.ok(imageModelPaths.length > 0);
    }
  }
  // Compose mounts a file of this repository at --config.
  for (const [name, s] of composeAimass()) {
    const mounts = arr(s.volumes, "volumes").map((v) => str(v, "volume").split(":"));
    const argv = arr(s.command ?? [], "command").map((a) => String(a));
    if (!argv.includes("--config")) continue; // the load generator
    const config = argv[argv.indexOf("--config") + 1];
    const mount = mounts.find((m) => m[1] === config);
    assert.ok(mount, `compose ${name}: nothing mounted at ${config}`);
    const file = join(REPO, mount[0] ?? "");
    assert.ok(existsSync(file), `compose ${name}: ${mount[0]} missing`);
    parseForImage(readFileSync(file, "utf8"), file);
  }
  // The ENTRYPOINT is in the image too.
  const entry = JSON.parse(str(last(runtime, "ENTRYPOINT"), "ENTRYPOINT")) as string[];
  assert.equal(entry[0], "node");
  assert.ok(
    existsSync(str(repoPathOf(runtime, entry[1] ?? ""), "entrypoint")),
    "the entrypoint script is copied",
  );
});

/** The parts of a parsed config that must not differ between the example and the deployment. */
function comparable(c: JsonObject): JsonObject {
  const out = clone(c);
  for (const k of ["source", "endpoints", "modelRepository", "features"]) delete out[k];
  const modelsDir = join(REPO, "models");
  for (const m of arr(out.models, "models")) {
    if (isObject(m) && typeof m.path === "string") m.path = relative(modelsDir, m.path);
  }
  return out;
}

test("the deployed pipeline is the shop example (GPU: only the providers differ)", () => {
  const example = exampleConfig();
  const cpuConfig = pipelineOf("cpu");
  assert.deepEqual(comparable(cpuConfig), comparable(example));
  const gpuConfig = pipelineOf("gpu");
  for (const m of arr(gpuConfig.models, "models")) {
    const providers = arr(at(m, "executionProviders"), "executionProviders");
    assert.equal(providers[0], "cuda", "the GPU config asks for CUDA first");
    assert.ok(providers.includes("cpu"), "and falls back to the CPU");
  }
  const withCpuProviders = clone(gpuConfig);
  arr(withCpuProviders.models, "models").forEach((m, i) => {
    obj(m, "model").executionProviders = clone(at(cpuConfig, `models.${i}.executionProviders`) ?? null);
  });
  assert.deepEqual(comparable(withCpuProviders), comparable(cpuConfig));
  assert.deepEqual(gpuConfig.features, cpuConfig.features);
  // The feature writer needs its topics; the example's features, if it has some, are kept.
  assert.equal(typeof at(cpuConfig, "features.updates.topic"), "string");
  assert.equal(typeof at(cpuConfig, "features.dlq.topic"), "string");
  if (example.features !== undefined) assert.deepEqual(cpuConfig.features, example.features);
});

test("terminationGracePeriodSeconds and compose's stop_grace_period outlast processing.shutdownGraceMs", () => {
  for (const overlay of rendered.keys()) {
    const grace = num(at(pipelineOf(overlay), "processing.shutdownGraceMs"), "shutdownGraceMs");
    for (const d of aimassDeployments(rendered.get(overlay) ?? [])) {
      const seconds = num(
        at(d, "spec.template.spec.terminationGracePeriodSeconds"),
        "terminationGracePeriodSeconds",
      );
      assert.ok(seconds * 1000 > grace, `${overlay} ${nameOf(d)}: ${seconds} s <= ${grace} ms`);
    }
  }
  const grace = num(at(pipelineOf("cpu"), "processing.shutdownGraceMs"), "shutdownGraceMs");
  for (const [name, s] of composeAimass()) {
    const m = /^(\d+)s$/.exec(String(s.stop_grace_period));
    assert.ok(m, `compose ${name}: stop_grace_period in seconds`);
    assert.ok(Number(m[1]) * 1000 > grace, `compose ${name}: stop_grace_period`);
  }
});

// ---------------------------------------------------------------------------------------------
// Scaling

const KAFKA_SCALER_KEYS = new Set([
  "bootstrapServers",
  "consumerGroup",
  "topic",
  "lagThreshold",
  "activationLagThreshold",
  "offsetResetPolicy",
  "allowIdleConsumers",
  "scaleToZeroOnInvalidOffset",
  "excludePersistentLag",
  "limitToPartitionsWithLag",
  "partitionLimitation",
  "ensureEvenDistributionOfPartitions",
  "version",
  "sasl",
  "tls",
  "unsafeSsl",
]);

test("KEDA scales the predictor on the group's lag, never past the input partitions", () => {
  for (const [overlay, objects] of rendered) {
    const config = pipelineOf(overlay);
    const partitions = num(at(config, "input.partitions"), "input.partitions");
    const scaled = each("ScaledObject", objects);
    assert.equal(scaled.length, 1);
    const so = scaled[0] as JsonObject;
    const target = find(objects, "Deployment", str(at(so, "spec.scaleTargetRef.name"), "scaleTargetRef"));
    assert.equal(argsOf(containerOf(target))[0], "predict", "KEDA scales the predictor");
    assert.equal(at(target, "spec.replicas"), undefined, "KEDA owns the replica count");
    const max = num(at(so, "spec.maxReplicaCount"), "maxReplicaCount");
    assert.ok(max <= partitions, `${overlay}: maxReplicaCount ${max} > ${partitions} input partitions`);
    assert.equal(at(so, "spec.minReplicaCount"), 1);
    const topic = find(objects, "KafkaTopic", str(at(config, "input.topic"), "input.topic"));
    assert.ok(max <= num(at(topic, "spec.partitions"), "partitions"));
    const triggers = arr(at(so, "spec.triggers"), "triggers");
    assert.equal(triggers.length, 1);
    assert.equal(at(triggers[0], "type"), "kafka");
    const meta = obj(at(triggers[0], "metadata"), "metadata");
    for (const k of Object.keys(meta)) assert.ok(KAFKA_SCALER_KEYS.has(k), `kafka scaler has no "${k}"`);
    assert.equal(meta.consumerGroup, at(config, "pipeline.groupId"));
    assert.equal(meta.topic, at(config, "input.topic"));
    assert.match(String(meta.lagThreshold), /^\d+$/);
    assert.equal(meta.offsetResetPolicy, "earliest", "a new group reads from the beginning");
    const [host, port] = str(meta.bootstrapServers, "bootstrapServers").split(":");
    const kafka = each("Kafka", objects)[0] as JsonObject;
    assert.equal(host, `${nameOf(kafka)}-kafka-bootstrap.${String(at(so, "metadata.namespace"))}.svc`);
    const env = arr(containerOf(target).env, "env").map((e) => obj(e, "env"));
    const brokers = envValue(objects, env.find((e) => e.name === "KAFKA_BROKERS") ?? {});
    assert.equal(port, brokers.split(":")[1], "KEDA uses the predictors' listener");
    // A surge pod finds no free partition when replicas may equal partitions: it would never
    // become ready (/readyz wants an assignment) and stall the rollout.
    if (max >= partitions) assert.equal(at(target, "spec.strategy.rollingUpdate.maxSurge"), 0);
    const pdb = each("PodDisruptionBudget", objects).find((p) =>
      matches(labels(p, "spec.selector.matchLabels"), labels(target, "spec.template.metadata.labels")),
    );
    assert.equal(at(pdb, "spec.maxUnavailable"), 1, `${overlay}: a PDB lets one predictor go at a time`);
  }
});

// ---------------------------------------------------------------------------------------------
// Kafka: topics and ACLs

/** Every topic the pipeline uses, with its partitions (as `aimass topics create` makes them). */
function pipelineTopics(c: JsonObject): Map<string, number> {
  const topics = new Map<string, number>();
  const add = (name: Json | undefined, partitions: Json | undefined) => {
    if (typeof name === "string") topics.set(name, num(partitions, `${name} partitions`));
  };
  add(at(c, "input.topic"), at(c, "input.partitions"));
  add(at(c, "output.topic"), at(c, "output.partitions"));
  add(at(c, "dlq.topic"), at(c, "dlq.partitions"));
  add(at(c, "output.shadowTopic"), at(c, "output.partitions"));
  add(at(c, "control.topic"), 1);
  add(at(c, "control.auditTopic"), 1);
  add(at(c, "features.updates.topic"), at(c, "features.updates.partitions"));
  add(at(c, "features.dlq.topic"), at(c, "features.dlq.partitions"));
  return topics;
}

test("every topic the pipeline uses is a KafkaTopic with the configured partitions, and no other", () => {
  for (const [overlay, objects] of rendered) {
    const config = pipelineOf(overlay);
    const kafka = each("Kafka", objects)[0] as JsonObject;
    const expected = pipelineTopics(config);
    const actual = new Map(
      each("KafkaTopic", objects).map((t) => [
        typeof at(t, "spec.topicName") === "string" ? String(at(t, "spec.topicName")) : nameOf(t),
        num(at(t, "spec.partitions"), `${nameOf(t)} partitions`),
      ]),
    );
    assert.deepEqual(new Map([...actual].sort()), new Map([...expected].sort()), overlay);
    for (const o of [
      ...each("KafkaTopic", objects),
      ...each("KafkaUser", objects),
      ...each("KafkaNodePool", objects),
    ])
      assert.equal(labels(o)["strimzi.io/cluster"], nameOf(kafka), `${keyOf(o)}: strimzi.io/cluster`);
    const brokerConfig = obj(at(kafka, "spec.kafka.config"), "config");
    const cap = Number(brokerConfig["transaction.max.timeout.ms"] ?? 900_000);
    assert.ok(num(at(config, "processing.transactionTimeoutMs"), "transactionTimeoutMs") <= cap);
  }
});

type Acl = string; // "<resource type> <pattern> <name> <operation>"

function aclsOf(user: JsonObject): Set<Acl> {
  const out = new Set<Acl>();
  for (const a of arr(at(user, "spec.authorization.acls"), "acls")) {
    assert.notEqual(at(a, "type"), "deny");
    const r = obj(at(a, "resource"), "resource");
    for (const op of arr(at(a, "operations"), "operations"))
      out.add(
        `${String(r.type)} ${String(r.patternType ?? "literal")} ${String(r.name ?? "")} ${String(op)}`,
      );
  }
  return out;
}

/** A fact of the code, from its source: the template must be there, or the ACLs go stale. */
function sourceHas(file: string, needle: string): boolean {
  return read(file).includes(needle);
}

test("the KafkaUsers' ACLs are exactly what the pipeline needs (least privilege)", () => {
  // Transactional ids: `${transactionalIdPrefix}.${topic}.${partition}` (partition-workers.ts).
  assert.ok(
    sourceHas(
      "services/predictor/partition-workers.ts",
      "`${config.pipeline.transactionalIdPrefix}.${topic}.${partition}`",
    ),
    "partition-workers.ts no longer builds transactional ids as <prefix>.<topic>.<partition>: update the ACLs",
  );
  // The feature writer's group: `${groupId}-features` (writer.ts).
  assert.ok(
    sourceHas("services/feature-writer/writer.ts", "`${this.options.config.pipeline.groupId}-features`"),
  );
  for (const [overlay, objects] of rendered) {
    const c = pipelineOf(overlay);
    const s = (p: string) => str(at(c, p), p);
    const groupId = s("pipeline.groupId");
    const predictor = new Set<Acl>([
      `topic literal ${s("input.topic")} Read`,
      `topic literal ${s("input.topic")} Describe`,
      `group literal ${groupId} Read`,
      `topic literal ${s("output.topic")} Write`,
      `topic literal ${s("output.topic")} Describe`,
      `topic literal ${s("dlq.topic")} Write`,
      `topic literal ${s("dlq.topic")} Describe`,
      `transactionalId prefix ${s("pipeline.transactionalIdPrefix")}. Write`,
      `transactionalId prefix ${s("pipeline.transactionalIdPrefix")}. Describe`,
    ]);
    if (typeof at(c, "output.shadowTopic") === "string") {
      predictor.add(`topic literal ${s("output.shadowTopic")} Write`);
      predictor.add(`topic literal ${s("output.shadowTopic")} Describe`);
    }
    if (typeof at(c, "control.topic") === "string") {
      // Each worker follows the control topic in a group of its own and deletes it on stop.
      assert.ok(
        readdirSync(join(REPO, "services/predictor"))
          .filter((f) => f.endsWith(".ts"))
          .some((f) =>
            /`\$\{config\.pipeline\.groupId\}\.control\.\$\{(\w+\.)?instanceId\}`/.test(
              read(`services/predictor/${f}`),
            ),
          ),
        "no predictor module builds the control group id as <groupId>.control.<instance id>: update the ACLs",
      );
      // The listener deletes its group itself, or through the topic follower it is built on.
      assert.ok(
        sourceHas("services/predictor/control-listener.ts", "deleteGroups(") ||
          (sourceHas("services/predictor/control-listener.ts", 'from "../common/kafka/follow-topic.js"') &&
            sourceHas("services/common/kafka/follow-topic.ts", "deleteGroups(")),
        "the control listener no longer deletes its group on stop: update the ACLs",
      );
      predictor.add(`topic literal ${s("control.topic")} Read`);
      predictor.add(`topic literal ${s("control.topic")} Describe`);
      predictor.add(`group prefix ${groupId}.control. Read`);
      predictor.add(`group prefix ${groupId}.control. Delete`);
      predictor.add(`topic literal ${s("control.auditTopic")} Write`);
      predictor.add(`topic literal ${s("control.auditTopic")} Describe`);
    }
    const writer = new Set<Acl>([
      `topic literal ${s("features.updates.topic")} Read`,
      `topic literal ${s("features.updates.topic")} Describe`,
      `group literal ${groupId}-features Read`,
      `topic literal ${s("features.dlq.topic")} Write`,
      `topic literal ${s("features.dlq.topic")} Describe`,
    ]);
    const sorted = (x: Set<string>) => [...x].sort();
    assert.deepEqual(sorted(aclsOf(find(objects, "KafkaUser", `${groupId}-predictor`))), sorted(predictor));
    assert.deepEqual(sorted(aclsOf(find(objects, "KafkaUser", `${groupId}-feature-writer`))), sorted(writer));
    assert.equal(each("KafkaUser", objects).length, 2);
  }
});

// ---------------------------------------------------------------------------------------------
// Monitoring copies

const SYNC = "AIMASS_SYNC_MONITORING=1 node --test dist/test/unit/deploy/consistency.test.js (then prettier)";

test("the PrometheusRule's groups are the groups of k8s/monitoring/alerts/aimass-rules.yaml", () => {
  const groups = at(yamlFile(RULES), "groups");
  assert.deepEqual(at(yamlFile(RULE_COPY), "spec.groups"), groups, `${RULE_COPY} is stale: ${SYNC}`);
  for (const objects of rendered.values()) {
    const rules = each("PrometheusRule", objects);
    assert.equal(rules.length, 1);
    assert.deepEqual(at(rules[0], "spec.groups"), groups);
  }
});

test("every dashboard of k8s/monitoring/dashboards is a ConfigMap labelled grafana_dashboard=1, unchanged", () => {
  const files = readdirSync(join(REPO, DASHBOARDS))
    .filter((f) => f.endsWith(".json"))
    .sort();
  assert.ok(files.length > 0);
  assert.deepEqual(readdirSync(join(REPO, DASHBOARD_COPIES)).sort(), files, `${DASHBOARD_COPIES}: ${SYNC}`);
  for (const f of files) {
    assert.equal(
      read(`${DASHBOARD_COPIES}/${f}`),
      read(`${DASHBOARDS}/${f}`),
      `${DASHBOARD_COPIES}/${f} is stale: ${SYNC}`,
    );
  }
  for (const [overlay, objects] of rendered) {
    const dashboards = each("ConfigMap", objects).filter((c) => labels(c).grafana_dashboard === "1");
    const byKey = new Map(dashboards.flatMap((c) => Object.entries(obj(c.data, "data"))));
    assert.deepEqual([...byKey.keys()].sort(), files, overlay);
    for (const f of files) {
      assert.equal(byKey.get(f), read(`${DASHBOARDS}/${f}`), `${overlay}: ${f}`);
      JSON.parse(String(byKey.get(f)));
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Image and compose

test("the image's user is the manifests' runAsUser and compose's user", () => {
  const user = str(last(runtime, "USER"), "USER");
  assert.match(user, /^\d+:\d+$/, "numeric, so runAsNonRoot can verify it");
  const [uid, gid] = user.split(":").map(Number);
  for (const objects of rendered.values()) {
    for (const d of aimassDeployments(objects)) {
      assert.equal(at(d, "spec.template.spec.securityContext.runAsUser"), uid);
      assert.equal(at(d, "spec.template.spec.securityContext.runAsGroup"), gid);
    }
  }
  for (const [name, s] of composeAimass()) {
    assert.equal(s.user, user, `compose ${name}: user`);
    assert.equal(s.read_only, true, `compose ${name}: read_only`);
    assert.deepEqual(s.tmpfs, ["/tmp"], `compose ${name}: writable /tmp`);
  }
});

const SERVICE_KEYS = new Set([
  "image",
  "build",
  "hostname",
  "environment",
  "volumes",
  "user",
  "read_only",
  "tmpfs",
  "cap_drop",
  "security_opt",
  "stop_grace_period",
  "restart",
  "ports",
  "healthcheck",
  "command",
  "entrypoint",
  "depends_on",
  "profiles",
  "configs",
]);

test("docker-compose.yml: known keys, single-node Kafka settings, Prometheus and Grafana wiring", () => {
  for (const k of Object.keys(compose))
    assert.ok(["name", "services", "configs", "volumes"].includes(k) || k.startsWith("x-"), `top-level ${k}`);
  for (const [name, s] of Object.entries(composeServices)) {
    for (const k of Object.keys(obj(s, name)))
      assert.ok(SERVICE_KEYS.has(k), `compose ${name}: unknown key ${k}`);
    for (const dep of Object.keys(isObject(at(s, "depends_on")) ? obj(at(s, "depends_on"), "") : {}))
      assert.ok(dep in composeServices, `compose ${name}: depends on unknown ${dep}`);
    for (const v of arr(at(s, "volumes") ?? [], "volumes")) {
      const src = str(v, "volume").split(":")[0] ?? "";
      if (src.startsWith("./")) assert.ok(existsSync(join(REPO, src)), `compose ${name}: ${src} missing`);
    }
  }
  for (const svc of [
    "kafka",
    "schema-registry",
    "redis",
    "topics",
    "predictor-1",
    "predictor-2",
    "feature-writer",
    "load",
    "prometheus",
    "grafana",
  ])
    assert.ok(svc in composeServices, `compose: no ${svc}`);
  assert.deepEqual(arr(at(composeServices.topics, "command"), "command").slice(0, 2), ["topics", "create"]);
  assert.equal(
    at(composeServices["predictor-1"], "depends_on.topics.condition"),
    "service_completed_successfully",
  );

  const kafka = obj(at(composeServices.kafka, "environment"), "kafka environment");
  assert.match(String(at(composeServices.kafka, "image")), /^apache\/kafka:4\./);
  assert.match(str(kafka.CLUSTER_ID, "CLUSTER_ID"), /^[A-Za-z0-9_-]{22}$/, "a base64url UUID");
  assert.match(String(kafka.KAFKA_PROCESS_ROLES), /broker/);
  assert.match(String(kafka.KAFKA_PROCESS_ROLES), /controller/);
  for (const k of [
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
  ])
    assert.equal(kafka[k], 1, `${k}: one broker`);
  assert.match(String(at(composeServices["schema-registry"], "image")), /^apicurio\/apicurio-registry:3\./);

  // Prometheus: k8s/monitoring/prometheus.yml's intervals and rule file, the compose targets.
  const prom = obj(
    parseYaml(str(at(compose, "configs.prometheus.content"), "prometheus config")) as Json,
    "prom",
  );
  const reference = obj(yamlFile("k8s/monitoring/prometheus.yml"), "prometheus.yml");
  assert.deepEqual(prom.global, reference.global);
  assert.deepEqual(prom.rule_files, reference.rule_files);
  const promService = obj(composeServices.prometheus, "prometheus");
  const configTarget = str(at(promService, "configs.0.target"), "config target");
  const ruleMount = arr(promService.volumes, "volumes")
    .map((v) => str(v, "volume").split(":"))
    .find((m) => m[1] === join(configTarget, "..", str(at(prom, "rule_files.0"), "rule file")));
  assert.ok(ruleMount, "the rule file is mounted where prometheus.yml's rule_files points");
  assert.equal(ruleMount[0], `./${RULES}`);
  const targets = (job: string) =>
    new Set(
      arr(prom.scrape_configs, "scrape_configs")
        .filter((j) => at(j, "job_name") === job)
        .flatMap((j) => arr(at(j, "static_configs.0.targets"), "targets").map(String)),
    );
  const expected = (command: string) =>
    new Set(
      composeAimass()
        .filter(([, s]) => at(s, "command.0") === command)
        .map(([n, s]) => `${n}:${metricsPortOf({ args: s.command ?? [] })}`),
    );
  assert.deepEqual(targets("aimass-predictor"), expected("predict"));
  assert.deepEqual(targets("aimass-feature-writer"), expected("features"));
  // Prometheus' own parser (strict about unknown keys) on the config and the rule file.
  if (spawnSync("promtool", ["--version"]).status === 0) {
    const dir = mkdtempSync(join(tmpdir(), "aimass-prom-"));
    try {
      mkdirSync(join(dir, "alerts"));
      copyFileSync(join(REPO, RULES), join(dir, "alerts", basename(RULES)));
      writeFileSync(join(dir, "prometheus.yml"), str(at(compose, "configs.prometheus.content"), "content"));
      execFileSync("promtool", ["check", "config", join(dir, "prometheus.yml")], { stdio: "pipe" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  // Grafana: provisioning from k8s/monitoring/grafana, dashboards where the provider looks.
  const grafana = obj(composeServices.grafana, "grafana");
  const gmounts = arr(grafana.volumes, "volumes").map((v) => str(v, "volume").split(":"));
  const provider = yamlFile("k8s/monitoring/grafana/provisioning/dashboards/aimass.yaml");
  const dashboardPath = str(at(provider, "providers.0.options.path"), "provider path");
  assert.ok(
    gmounts.some((m) => m[0] === `./${DASHBOARDS}` && m[1] === dashboardPath),
    "dashboards mount",
  );
  for (const kind of ["datasources", "dashboards"])
    assert.ok(
      gmounts.some(
        (m) =>
          m[0] === `./k8s/monitoring/grafana/provisioning/${kind}` &&
          m[1] === `/etc/grafana/provisioning/${kind}`,
      ),
      `grafana ${kind} provisioning`,
    );
  const url = new URL(str(at(grafana, "environment.PROMETHEUS_URL"), "PROMETHEUS_URL"));
  assert.ok(url.hostname in composeServices);
  const datasource = yamlFile("k8s/monitoring/grafana/provisioning/datasources/prometheus.yaml");
  assert.equal(at(datasource, "datasources.0.jsonData.timeInterval"), at(prom, "global.scrape_interval"));
});
