// Argument checks of the public API: precise TypeErrors before any syscall.
import { resolve } from 'node:path';

type Kind = 'boolean' | 'number' | 'number or null' | 'string' | 'array' | 'AbortSignal';

/** The TypeError of a bad argument, with Node's code (ERR_INVALID_ARG_TYPE, or ERR_INVALID_ARG_VALUE for a right type with a wrong value). */
export function typeError(message: string, code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' = 'ERR_INVALID_ARG_TYPE'): TypeError {
  return Object.assign(new TypeError(message), { code });
}

/** A path argument as an absolute path; TypeError for non-strings, empty strings and NUL bytes. */
export function checkPath(value: unknown, name: string): string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string, got ${typeof value}`);
  if (value === '') throw typeError(`${name} must not be empty`, 'ERR_INVALID_ARG_VALUE');
  if (value.includes('\0')) throw typeError(`${name} must not contain NUL bytes`, 'ERR_INVALID_ARG_VALUE');
  return resolve(value);
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw typeError(`${name} must be a boolean, got ${typeof value}`);
  return value;
}

/**
 * The options object of @fn, checked against @schema: unknown keys are refused
 * with the closest known spelling (`readOnly` -> "readonly").
 */
export function checkOptions<T extends object>(value: unknown, schema: Record<keyof T & string, Kind>, fn: string): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(`options of ${fn}() must be an object`);
  const known = Object.keys(schema);
  for (const [key, v] of Object.entries(value)) {
    const kind = (schema as Record<string, Kind>)[key];
    if (kind === undefined) {
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
      const hint = near ? `; did you mean "${near}"?` : `; known options: ${known.join(', ')}`;
      throw typeError(`unknown option "${key}" for ${fn}()${hint}`, 'ERR_INVALID_ARG_VALUE');
    }
    if (v === undefined) continue;
    const ok =
      kind === 'AbortSignal' ? v instanceof AbortSignal : kind === 'array' ? Array.isArray(v) : kind === 'number or null' ? v === null || typeof v === 'number' : typeof v === kind;
    if (!ok) {
      const what = kind === 'AbortSignal' ? 'an AbortSignal' : kind === 'array' ? 'an array' : `a ${kind}`;
      throw typeError(`option "${key}" of ${fn}() must be ${what}`);
    }
  }
  return value as Partial<T>;
}
