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
