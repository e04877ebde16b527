// Decodes interchange Kafka messages (stdin, one per line) with the JavaScript SDK's Kafka.toEvent.
//
//   node decode_js.mjs < messages.jsonl     (NODE_PATH must reach the SDK)
//
// Prints one line per input line: {"ok": event as CloudEvents JSON} or {"error": "Class: text"}.
// The message is handed over the way kafkajs delivers it, except that header values and the key
// are UTF-8 strings (toEvent needs string header values): a repeated header becomes an array of
// its values, a null header value stays null, the value is a Buffer (null when absent). The mode
// is the SDK's choice. Attributes are the event's own properties that are not undefined, typed as
// the SDK holds them; `time` is the SDK's string. Data: bytes that hold JSON under a JSON (or no)
// content type are given as their text in "data_json_text", so big integers are not rounded;
// other bytes as "data_base64"; anything the SDK parsed as "data". A binary event without
// `ce_time` gets new Date() as `time`, pinned by pinned.mjs (a structured one without `time`
// throws); a structured event without `id` gets a random uuid (not pinned: it comes from the
// SDK's own uuid module).

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import "./pinned.mjs";
import { fromBytes, toBytes, errorText } from "./interchange.mjs";

const require = createRequire(import.meta.url); // finds the SDK through NODE_PATH
const { Kafka } = require("cloudevents");

function asString(v) {
  return v === null || v === undefined ? null : toBytes(v).toString("utf8");
}

function kafkaMessage(m) {
  const headers = {};
  for (const [name, v] of m.headers) {
    const value = asString(v);
    if (!Object.hasOwn(headers, name)) headers[name] = value;
    else headers[name] = [].concat(headers[name], [value]);
  }
  return { key: asString(m.key), headers, value: toBytes(m.value) };
}

function isJsonType(contentType) {
  if (contentType === undefined || contentType === null) return true;
  const media = String(contentType).split(";")[0].trim().toLowerCase();
  return media.endsWith("/json") || media.endsWith("+json");
}

function render(event) {
  const out = {};
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || name === "data" || name === "data_base64") continue;
    out[name] = value instanceof Uint8Array ? fromBytes(value) : value;
  }
  const data = event.data;
  if (data instanceof Uint8Array) {
    const text = fromBytes(data);
    const json = typeof text === "string" && isJsonType(event.datacontenttype) && parses(text);
    if (json) out.data_json_text = text;
    else out.data_base64 = Buffer.from(data).toString("base64");
  } else if (data !== undefined) {
    out.data = data;
  }
  return out;
}

function parses(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  let row;
  try {
    const event = Kafka.toEvent(kafkaMessage(JSON.parse(line)));
    row = { ok: Array.isArray(event) ? event.map(render) : render(event) };
  } catch (err) {
    row = { error: errorText(err) };
  }
  process.stdout.write(JSON.stringify(row) + "\n");
}
