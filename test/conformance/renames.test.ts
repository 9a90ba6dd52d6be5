// Conformance: renames, rename cycles and swaps (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'renames');
