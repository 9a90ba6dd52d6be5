/**
 * Gives an Error subclass its `name` on the prototype, not enumerable (like
 * Node's own errors: it shows in stacks and messages, not in `{...err}` or
 * test diffs). The name is passed explicitly so minification cannot change it.
 */
export function nameErrorClass(ctor: abstract new (...args: never[]) => Error, name: string): void {
  Object.defineProperty(ctor.prototype, 'name', { value: name, enumerable: false, configurable: true, writable: true });
}
