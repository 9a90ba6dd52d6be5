// Conformance: xattrs, ACLs, capabilities, owners and modes, timestamps, symlinks, special files (see test/fixtures/conformance/README.md).
import t from 'tap';

import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'metadata');
