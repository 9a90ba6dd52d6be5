// Typed access to the fields of a request body, each refusal naming the
// field and what was expected. Names and values are then checked by the
// store (volume and snapshot names, options), so the rules live in one place.
import type { JsonObject } from './body.js';
import { RequestError } from './errors.js';

function invalid(message: string): never {
  throw new RequestError('ERR_INVALID_REQUEST', message);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The field's value; own properties only (a body of `{}` has no `constructor` field). */
function get(body: JsonObject, key: string): unknown {
  return Object.hasOwn(body, key) ? body[key] : undefined;
}

/** A required string field. */
export function requiredString(body: JsonObject, key: string): string {
  const value = get(body, key);
  if (value === undefined || value === null) invalid(`${key} is required`);
  if (typeof value !== 'string') invalid(`${key} must be a string, got ${kind(value)}`);
  return value;
}

/** An optional string field: absent or null is undefined. */
export function optionalString(body: JsonObject, key: string): string | undefined {
  const value = get(body, key);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') invalid(`${key} must be a string, got ${kind(value)}`);
  return value;
}

/** An optional boolean field: absent or null is `fallback`. */
export function optionalBoolean(body: JsonObject, key: string, fallback = false): boolean {
  const value = get(body, key);
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') invalid(`${key} must be true or false, got ${kind(value)}`);
  return value;
}

/** A required array of strings. */
export function stringList(body: JsonObject, key: string): string[] {
  const value = get(body, key);
  if (value === undefined || value === null) invalid(`${key} is required`);
  if (!Array.isArray(value)) invalid(`${key} must be an array of strings, got ${kind(value)}`);
  value.forEach((item, i) => {
    if (typeof item !== 'string') invalid(`${key}[${i}] must be a string, got ${kind(item)}`);
  });
  return value as string[];
}

/** A required field that is a string or a whole number (the Schedule endpoint's `Timer`). */
export function stringOrInteger(body: JsonObject, key: string): string | number {
  const value = get(body, key);
  if (value === undefined || value === null) invalid(`${key} is required`);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  return invalid(`${key} must be a string or a whole number, got ${typeof value === 'number' ? String(value) : kind(value)}`);
}

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-](\d\d):(\d\d))$/;

/** Whether the fields of an RFC 3339 match are in range (Date itself rolls 30 February over to March). */
function inRange(m: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const zone = m[9] === undefined || (Number(m[9]) <= 23 && Number(m[10]) <= 59);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && zone;
}

/** An optional RFC 3339 date-time with a zone (`2024-01-10T12:00:00Z`). */
export function optionalDate(body: JsonObject, key: string): Date | undefined {
  const text = optionalString(body, key);
  if (text === undefined) return undefined;
  const m = RFC3339.exec(text);
  const date = m && inRange(m) ? new Date(text.replace(' ', 'T')) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    invalid(`${key} must be an RFC 3339 date-time with a zone, such as 2024-01-10T12:00:00Z; got ${JSON.stringify(text)}`);
  }
  return date;
}

/**
 * Refuses fields other than `allowed`, suggesting the right spelling: a
 * misspelt `DryRun` must not silently make a purge real.
 */
export function onlyFields(body: JsonObject, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (allowed.includes(key)) continue;
    const near = allowed.find((a) => a.toLowerCase() === key.toLowerCase());
    const hint = near ? `; did you mean ${JSON.stringify(near)}?` : allowed.length ? ` (expected ${allowed.join(', ')})` : ' (expected none)';
    invalid(`unknown field ${JSON.stringify(key)}${hint}`);
  }
}
