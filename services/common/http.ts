// The per-worker HTTP endpoint: /metrics (Prometheus), /healthz (alive), /readyz (ready to
// serve: 200, otherwise 503 with the reason). Nothing else is served.
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export interface HealthSource {
  alive(): boolean;
  ready(): { ready: boolean; reason?: string };
}

/** Listens on `port` (0: any free port; see `listeningPort`) and serves until closed. */
export async function startHttp(
  port: number,
  registry: Registry,
  health: HealthSource,
  host = "0.0.0.0",
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (path === "/healthz") {
      const ok = health.alive();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not alive\n");
    } else if (path === "/readyz") {
      const r = health.ready();
      res
        .writeHead(r.ready ? 200 : 503, { "content-type": "text/plain" })
        .end(r.ready ? "ready\n" : `${r.reason ?? "not ready"}\n`);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** The port a started server listens on: the one the OS chose when started on port 0. */
export function listeningPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the server is not listening on TCP");
  return address.port;
}
