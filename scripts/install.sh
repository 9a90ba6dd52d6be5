#!/usr/bin/env bash
# Quick start, step 1: install buttervolume from this checkout on a fresh
# Debian 12 machine, as root. (Until the plugin server lands, this builds the
# native core and prints its version.)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
command -v node >/dev/null || { echo "install.sh: Node.js >= 20.19 is required" >&2; exit 1; }
npm ci --no-audit --no-fund
npm run build:native
npm run build
node --input-type=module -e "
  import * as btrfs from 'buttervolume/btrfs';
  const pkg = JSON.parse((await import('node:fs')).readFileSync('package.json', 'utf8'));
  console.log('buttervolume ' + pkg.version + ': native core ready (' + Object.keys(btrfs).length + ' exports)');
"
