// Calls functions of a web/ ES module for the Python tests: reads {module, calls: [[name, ...args]]}
// as JSON on stdin, prints [{ok: result} | {error: text}] as JSON.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
const mod = await import(pathToFileURL(input.module).href);
const out = input.calls.map(([name, ...args]) => {
  try {
    return { ok: mod[name](...args) ?? null };
  } catch (err) {
    return { error: String(err && err.stack ? err.stack : err) };
  }
});
process.stdout.write(JSON.stringify(out));
