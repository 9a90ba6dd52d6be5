// Conformance: holes, preallocation, truncation, large and > 4 GiB sparse files, NOCOW (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'data');
