// CSV exactly as Python's csv module reads and writes it with the default
// "excel" dialect (what the original used for schedule.csv): comma-separated,
// '"' quotes a field, '""' is a quote inside one, a quote in the middle of an
// unquoted field is literal, and a quoted field may hold commas and newlines.

/** One record of a CSV text. */
export interface CsvRecord {
  /** The fields, unquoted. Empty when `error` is set. */
  readonly fields: readonly string[];
  /** 1-based line the record starts on. */
  readonly line: number;
  /** The record's text as written, without its line terminator. */
  readonly raw: string;
  /** Set when the record cannot be read (unterminated quoted field). */
  readonly error?: string;
}

/**
 * Split CSV text into records, tolerant of `\r\n`, `\n` and `\r` line ends and
 * of a leading UTF-8 BOM. Blank lines (empty or whitespace only) are skipped,
 * as Python skips empty rows. An unterminated quoted field yields an error
 * record for its first line only and reading resumes on the next line, so one
 * stray quote cannot swallow the rest of the file.
 */
export function readCsvRecords(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let pos = 0;
  let line = 1;
  while (pos < src.length) {
    const parsed = readRecord(src, pos);
    if (parsed.unterminated) {
      const end = lineEnd(src, pos);
      records.push({ fields: [], line, raw: src.slice(pos, end), error: 'a quoted field is never closed (missing ")' });
      const next = skipTerminator(src, end);
      pos = next;
      line += 1;
      continue;
    }
    const raw = src.slice(pos, parsed.end);
    const blank = parsed.fields.length === 1 && !parsed.quoted && parsed.fields[0]!.trim() === '';
    if (!blank) records.push({ fields: parsed.fields, line, raw });
    line += countLineBreaks(raw) + 1;
    pos = skipTerminator(src, parsed.end);
  }
  return records;
}

interface Parsed {
  fields: string[];
  /** Offset of the record's terminator (or of the end of text). */
  end: number;
  quoted: boolean;
  unterminated: boolean;
}

function readRecord(src: string, start: number): Parsed {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let i = start;
  // States of CPython's Modules/_csv.c reader, for the excel dialect, strict off.
  let state: 'start' | 'unquoted' | 'quoted' | 'quoteInQuoted' = 'start';
  for (; i < src.length; i += 1) {
    const c = src[i]!;
    const eol = c === '\n' || c === '\r';
    if (state === 'quoted') {
      if (c === '"') state = 'quoteInQuoted';
      else field += c;
      continue;
    }
    if (eol) break;
    if (c === ',') {
      fields.push(field);
      field = '';
      state = 'start';
    } else if (state === 'start' && c === '"') {
      state = 'quoted';
      quoted = true;
    } else if (state === 'quoteInQuoted' && c === '"') {
      field += '"';
      state = 'quoted';
    } else {
      field += c; // also a char after a closing quote: Python keeps it (non-strict)
      state = 'unquoted';
    }
  }
  if (state === 'quoted') return { fields: [], end: i, quoted, unterminated: true };
  fields.push(field);
  return { fields, end: i, quoted, unterminated: false };
}

function lineEnd(src: string, from: number): number {
  let i = from;
  while (i < src.length && src[i] !== '\n' && src[i] !== '\r') i += 1;
  return i;
}

function skipTerminator(src: string, at: number): number {
  if (src[at] === '\r' && src[at + 1] === '\n') return at + 2;
  return at < src.length ? at + 1 : at;
}

function countLineBreaks(s: string): number {
  return s.match(/\r\n|\n|\r/g)?.length ?? 0;
}

/**
 * Format one row as Python's csv.writer does (QUOTE_MINIMAL): a field holding
 * a comma, a quote, `\r` or `\n` is quoted and its quotes doubled. No line
 * terminator is appended.
 */
export function formatCsvRow(fields: readonly string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}
