import { createHash } from 'node:crypto';

import canonicalize from 'canonicalize';

/**
 * Serializes a JSON value to its RFC 8785 (JSON Canonicalization Scheme) form.
 *
 * The `canonicalize` package (5.x) sorts object members by UTF-16 code units, writes
 * numbers with the ECMAScript `Number.prototype.toString` algorithm that RFC 8785
 * adopts (so `1.0` becomes `1`, `1e21` stays `1e+21`), escapes strings the way
 * `JSON.stringify` does and emits no whitespace. It throws on NaN, Infinity, lone
 * surrogates and cycles. Two values that are equal as JSON therefore produce the same
 * bytes, which is what makes a hash over them reproducible.
 *
 * @throws TypeError when the value has no JSON representation (for example `undefined`).
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) {
    throw new TypeError('canonical JSON failed: the value has no JSON representation');
  }
  return text;
}

/** Returns the UTF-8 bytes of the RFC 8785 form of a JSON value. */
export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

/** Returns the lowercase hex SHA-256 digest of some bytes or of a string's UTF-8 bytes. */
export function sha256Hex(input: Uint8Array | string): string {
  return createHash('sha256').update(input).digest('hex');
}
