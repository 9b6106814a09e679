// The predictor's exactly-once writes depend on patches/kafkajs.mjs: kafkajs 2.2.4's own
// sendMessages loses and duplicates records when a send across several brokers fails. npm ci
// applies the patch (postinstall) and the images apply it explicitly; an install that skipped
// scripts would run unpatched without this check.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { AimassError } from "../errors.js";

const MARK = "/* aimass-patch */";

export function kafkajsSendIsPatched(): boolean {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve("kafkajs/src/producer/sendMessages.js"), "utf8").includes(MARK);
}

/** Rejects a start on an unpatched kafkajs, with the command that fixes it. */
export function assertKafkajsPatched(): void {
  if (!kafkajsSendIsPatched())
    throw new AimassError(
      "CONFIG_INVALID",
      "kafkajs is installed without aimass' patch to its producer (patches/kafkajs.mjs), which " +
        "exactly-once writes across several brokers need: run `node patches/kafkajs.mjs`",
    );
}
