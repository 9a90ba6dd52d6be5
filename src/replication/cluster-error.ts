import { CodedError } from '../util/coded-error.js';
import { nameErrorClass } from '../util/error-name.js';

/** Why a Mount of a replicated volume is refused (Swarm retries the task). */
export class ClusterError extends CodedError<'ERR_VOLUME_HELD_ELSEWHERE' | 'ERR_HOLDER_UNREACHABLE' | 'ERR_VOLUME_DIVERGED' | 'ERR_FETCHING' | 'ERR_NOT_REPLICATED'> {}

nameErrorClass(ClusterError, 'ClusterError');
