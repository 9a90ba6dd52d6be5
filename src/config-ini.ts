import { nameErrorClass } from './util/error-name.js';

// The subset of Python's configparser that the original's config.ini relies
// on: only the [DEFAULT] section is kept, read the way ConfigParser() reads it
// by default, so a file that worked with the Python plugin means the same here.

/** One `key = value` of the `[DEFAULT]` section, interpolated, with the line it starts on. */
export interface IniEntry {
  readonly value: string;
  readonly line: number;
}

/** A config.ini that configparser would refuse, or an interpolation that cannot resolve. */
export class IniSyntaxError extends Error {
  /** 1-based line the problem is on. */
  readonly line: number;

  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.line = line;
  }
}

nameErrorClass(IniSyntaxError, 'IniSyntaxError');

const SECTION = /^\[(.+)\]$/;
// configparser's OPTCRE: the key is everything before the FIRST '=' or ':'.
const OPTION = /^(.*?)\s*[=:]\s*(.*)$/;
const REFERENCE = /^%\(([^)]+)\)s/;
// configparser's MAX_INTERPOLATION_DEPTH.
const MAX_DEPTH = 10;

/**
 * Parse config.ini text and return the `[DEFAULT]` section, keys lower-cased
 * (configparser's optionxform), values trimmed and interpolated.
 *
 * Rules kept from configparser: a `[section]` header must come first; `key = value`
 * or `key: value`; lines whose first non-blank character is `#` or `;` are
 * comments (no inline comments); an indented line continues the previous value
 * (joined with a newline); a key repeated within `[DEFAULT]` is an error.
 * Sections other than `[DEFAULT]` are parsed for syntax only.
 *
 * Interpolation is configparser's BasicInterpolation, made lenient: `%%` is a
 * literal `%` and `%(key)s` is replaced by another `[DEFAULT]` key, as in
 * Python; a `%` followed by anything else, which Python refuses, is kept as
 * is. So `DTFORMAT = %%Y-%%m-%%d` (what the original required) and
 * `DTFORMAT = %Y-%m-%d` both mean `%Y-%m-%d`.
 *
 * @throws IniSyntaxError with the offending line number.
 */
export function parseIniDefaults(text: string): Map<string, IniEntry> {
  const raw = new Map<string, { value: string; line: number }>();
  let section: string | undefined;
  // The option an indented line would continue (in any section).
  let current: { key: string; indent: number; inDefault: boolean } | undefined;

  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  lines.forEach((line, index) => {
    const n = index + 1;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const indent = line.length - line.trimStart().length;
    if (current && indent > current.indent) {
      const entry = current.inDefault ? raw.get(current.key) : undefined;
      if (entry) entry.value += `\n${trimmed}`;
      return;
    }
    const header = SECTION.exec(trimmed);
    if (header) {
      section = header[1];
      current = undefined;
      return;
    }
    if (section === undefined) {
      throw new IniSyntaxError(n, `a section header such as [DEFAULT] must come before ${JSON.stringify(trimmed)}`);
    }
    const option = OPTION.exec(trimmed);
    if (!option || option[1] === '') {
      throw new IniSyntaxError(n, `expected "key = value", a [section] header or a comment, got ${JSON.stringify(trimmed)}`);
    }
    const key = option[1]!.toLowerCase();
    const inDefault = section === 'DEFAULT';
    current = { key, indent, inDefault };
    if (!inDefault) return;
    const previous = raw.get(key);
    if (previous) {
      throw new IniSyntaxError(n, `key ${JSON.stringify(key)} is already set in [DEFAULT] on line ${previous.line}`);
    }
    raw.set(key, { value: option[2]!, line: n });
  });

  const result = new Map<string, IniEntry>();
  for (const [key, entry] of raw) {
    result.set(key, Object.freeze({ value: interpolate(entry.value, entry.line, raw, 1), line: entry.line }));
  }
  return result;
}

function interpolate(value: string, line: number, raw: Map<string, { value: string; line: number }>, depth: number): string {
  let out = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c !== '%') {
      out += c;
      i += 1;
    } else if (value[i + 1] === '%') {
      out += '%';
      i += 2;
    } else {
      const ref = REFERENCE.exec(value.slice(i));
      if (!ref) {
        out += '%'; // lenient: Python would refuse a lone '%'
        i += 1;
        continue;
      }
      const name = ref[1]!.toLowerCase();
      const target = raw.get(name);
      if (!target) throw new IniSyntaxError(line, `${ref[0]} refers to ${JSON.stringify(name)}, which is not set in [DEFAULT]`);
      if (depth >= MAX_DEPTH) throw new IniSyntaxError(line, `${ref[0]}: interpolation nested deeper than ${MAX_DEPTH} levels (a loop?)`);
      out += interpolate(target.value, line, raw, depth + 1);
      i += ref[0].length;
    }
  }
  return out;
}
