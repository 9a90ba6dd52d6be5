// Conformance: reflinks and clones, unaligned EOF blocks (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'clones');
