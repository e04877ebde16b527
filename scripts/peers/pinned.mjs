// A pinned clock for the JavaScript SDK.
// The SDK stamps `new Date()` as `time` on an event without one; after this module is imported
// a Date built without arguments is PINNED_NOW instead, so the scripts' output is deterministic
// and the invented attribute stays visible. Dates built from a value are untouched.

export const PINNED_NOW = "2000-01-01T00:00:00.000Z";

const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [PINNED_NOW]));
  }
};
