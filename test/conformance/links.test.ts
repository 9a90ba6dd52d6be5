// Conformance: hard links, orphan directories, rmdir order, inode numbers reused (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'links');
