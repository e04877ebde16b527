// The interchange JSON for Kafka messages, shared by the JavaScript peer scripts.
// A message is {"key": K, "headers": [[name, V], ...], "value": V} where K and each V are
// a JSON string when the bytes are valid UTF-8, {"base64": "..."} when they are not, and
// null when absent.

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Buffer | Uint8Array | string | null | undefined -> interchange value. */
export function fromBytes(data) {
  if (data === null || data === undefined) return null;
  if (typeof data === "string") return data;
  try {
    return utf8.decode(data);
  } catch {
    return { base64: Buffer.from(data).toString("base64") };
  }
}

/** interchange value -> Buffer | null. */
export function toBytes(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "object") return Buffer.from(value.base64, "base64");
  return Buffer.from(value, "utf8");
}

export function errorText(err) {
  // The class name, as ValidationError extends TypeError and keeps its `name`.
  return `${err?.constructor?.name ?? "Error"}: ${err?.message ?? String(err)}`;
}
