import { CodedError } from '../util/coded-error.js';
import { nameErrorClass } from '../util/error-name.js';

/**
 * A refusal or failure of the volume store, with a stable `code` in Node's
 * `ERR_*` style (`ERR_INVALID_VOLUME_NAME`, `ERR_VOLUME_NOT_FOUND`,
 * `ERR_VOLUME_IN_USE`, ...). The underlying BtrfsError, if any, is `cause`.
 */
export class StoreError extends CodedError {}

nameErrorClass(StoreError, 'StoreError');
