// Validate an AsyncAPI document as `asyncapi validate` does: with @asyncapi/parser, the library
// the AsyncAPI CLI runs, and its default rules. Prints each diagnostic as a JSON line; exits 1
// when the document does not parse or has an error or a warning (informational ones pass).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";

const path = resolve(process.argv[2]);
const { document, diagnostics } = await new Parser().parse(readFileSync(path, "utf8"), {
  source: path,
});
for (const { severity, code, message, path: where } of diagnostics) {
  console.log(JSON.stringify({ severity, code, message, path: where.join("/") }));
}
const failing = diagnostics.filter(({ severity }) => severity <= 1); // 0 error, 1 warning
process.exit(document && failing.length === 0 ? 0 : 1);
