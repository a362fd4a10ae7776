#!/usr/bin/env bash
# Lints the GitHub Actions workflows; part of `npm run lint`. actionlint is pinned and
# installed by scripts/install-tools.sh into $(go env GOPATH)/bin. With shellcheck on
# the PATH (apt-get install shellcheck; .ci/run installs it), the run: scripts are
# checked too.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
if command -v go >/dev/null 2>&1 && [ -x "$(go env GOPATH)/bin/actionlint" ]; then
  bin="$(go env GOPATH)/bin/actionlint"
elif command -v actionlint >/dev/null 2>&1; then
  bin="$(command -v actionlint)"
else
  echo "actionlint is not installed: run bash scripts/install-tools.sh" >&2
  exit 1
fi
"$bin" .github/workflows/*.yml
