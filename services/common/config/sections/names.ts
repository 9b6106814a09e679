// The name-like values of a pipeline config: topic, model and pipeline names, versions and the
// record formats. One definition each, so every section limits names the same way.
import { z } from "zod";

export const name = z.string().regex(/^[A-Za-z0-9._-]+$/, "use letters, digits, '.', '_' or '-'");
export const topicName = name.max(249);
export const format = z.enum(["json", "avro"]);

/**
 * A model version is a name, but YAML reads an unquoted `version: 3` as a number: a whole
 * number is taken as its digits. Anything else that is not a name gets one message that says
 * what to write (a YAML `3.10` is the number 3.1, so a fraction is never guessed at).
 */
export const versionName = z.union([z.int().min(0).transform(String), name], {
  error: (issue) =>
    issue.input === undefined
      ? "Invalid input: expected string, received undefined"
      : `expected a version name such as "3" (letters, digits, '.', '_' or '-'; quote it in YAML), got ${JSON.stringify(issue.input)}`,
});
