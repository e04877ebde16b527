// Encodes the interop event set with the JavaScript CloudEvents SDK's Kafka binding.
//
//   node produce_js.mjs EVENTS_JSONL OUT_DIR     (NODE_PATH must reach the SDK)
//
// Writes OUT_DIR/from-javascript-{binary,structured}.jsonl, one line per event:
// {"name": id, "message": M} or {"name": id, "error": text} when the SDK throws.
//
// Each event is built with `new CloudEvent(JSON.parse(line))`; JSON.parse rounds integers
// beyond 2^53 before the SDK sees them, as it would for any JavaScript producer.
// The binding returns header values and the value untyped; they are turned into bytes the way
// kafkajs writes them: a header that is undefined becomes a null header value, any other
// header value goes through String(). The value is different: kafkajs would send String(data),
// i.e. "[object Object]" for JSON data and "0,255,..." for a Uint8Array, so JSON data is
// serialized with JSON.stringify and bytes are sent as they are. The key is the binding's own
// (the `partitionkey` extension). `timestamp` is the binding's epoch-millisecond string, as a
// number. The SDK stamps `new Date()` as `time` on an event without one; pinned.mjs pins the
// clock to 2000-01-01T00:00:00Z so that the output is deterministic.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import "./pinned.mjs";
import { fromBytes, errorText } from "./interchange.mjs";

const require = createRequire(import.meta.url); // finds the SDK through NODE_PATH
const { CloudEvent, Kafka } = require("cloudevents");

function valueBytes(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  return JSON.stringify(value);
}

function toInterchange(m) {
  const message = {
    key: fromBytes(m.key === undefined || m.key === null ? null : String(m.key)),
    headers: Object.entries(m.headers).map(([name, v]) => [
      name,
      v === undefined || v === null ? null : fromBytes(v instanceof Uint8Array ? v : String(v)),
    ]),
    value: fromBytes(valueBytes(m.value)),
  };
  if (m.timestamp !== undefined) message.timestamp = Number(m.timestamp);
  return message;
}

const [eventsPath, outDir] = process.argv.slice(2);
const lines = readFileSync(eventsPath, "utf8").split("\n").filter((l) => l.trim());

for (const mode of ["binary", "structured"]) {
  const rows = lines.map((line) => {
    const name = JSON.parse(line).id;
    try {
      return { name, message: toInterchange(Kafka[mode](new CloudEvent(JSON.parse(line)))) };
    } catch (err) {
      return { name, error: errorText(err) };
    }
  });
  const text = rows.map((r) => JSON.stringify(r) + "\n").join("");
  writeFileSync(path.join(outDir, `from-javascript-${mode}.jsonl`), text);
}
