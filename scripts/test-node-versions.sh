#!/usr/bin/env bash
# Runs the vitest suite under the other supported Node.js majors: `npm test` already ran
# it under the Node.js on the PATH (20 in CI, the oldest supported). Each version comes
# from the npm registry's `node` package through npx, so no version manager is needed.
# The versions are pinned; PEREGRINE_NODE_VERSIONS="22.23.3" picks others. (The `node`
# package's newest 20.x is 20.9.0, older than the supported 20.17, so 20 is not in it.)
# Extra arguments go to vitest: bash scripts/test-node-versions.sh test/pipeline.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

versions="${PEREGRINE_NODE_VERSIONS:-22.23.3 24.9.0}"
failed=""
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for version in $versions; do
  echo "::: vitest on Node.js $version"
  # The addon and the TypeScript build are the ones npm install made; Node-API keeps
  # one binary loadable on every version.
  if ! npx --yes -p "node@$version" -- node node_modules/vitest/vitest.mjs run "$@" 2>&1 | tee "$logs/$version"; then
    failed="$failed $version"
  fi
done
if [ -n "$failed" ]; then
  # A later version's output pushes a failure out of view: name the failed tests last.
  for version in $failed; do
    echo "test-node-versions: failed on Node.js $version:" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$logs/$version" | grep -E '^ *(FAIL|×) ' | sort -u >&2 || true
  done
  echo "test-node-versions: the suite failed on Node.js$failed" >&2
  exit 1
fi
echo "test-node-versions: the suite passed on Node.js $versions"
