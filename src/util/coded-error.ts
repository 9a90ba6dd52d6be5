const BRAND = Symbol.for('buttervolume.CodedError');

/**
 * An expected failure with a stable `code` in Node's `ERR_*` style and a
 * one-line message; the layers' own error classes extend it. A lower-level
 * error that caused it goes in `cause`.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

Object.defineProperty(CodedError.prototype, BRAND, { value: true, enumerable: false });

/**
 * True for a CodedError from any copy of this module: the CLI's bundle and
 * the modules it loads from dist/ each have their own class, so `instanceof`
 * is not enough.
 */
export function isCodedError(value: unknown): value is CodedError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
