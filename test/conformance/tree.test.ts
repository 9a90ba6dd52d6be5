// Conformance: deep and wide trees, long paths and names, type changes,
// nested subvolumes, chains of incrementals (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'tree');
