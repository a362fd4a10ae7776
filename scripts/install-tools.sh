#!/usr/bin/env bash
# Installs the Go tools the tests and the lint need: h2spec, the HTTP/2 conformance
# suite (test/h2spec.test.ts), and actionlint, the GitHub Actions workflow linter
# (scripts/actionlint.sh, in npm run lint). h2spec's version and every dependency are
# pinned by scripts/h2spec/go.mod and go.sum: the v2 tags of h2spec lack a /v2 module path, and
# the module proxy serves v2.2.1+incompatible as its latest, so that is what is pinned.
# The binaries go to $(go env GOPATH)/bin, where the test and the lint look for them.
set -euo pipefail
cd "$(dirname "$0")/h2spec"
if ! command -v go >/dev/null 2>&1; then
  echo "install-tools: the Go toolchain (go) is required to install h2spec" >&2
  exit 1
fi
go install github.com/summerwind/h2spec/cmd/h2spec
echo "install-tools: h2spec installed in $(go env GOPATH)/bin"

# `go install pkg@version` pins actionlint and, through its go.sum, every dependency.
ACTIONLINT_VERSION=v1.7.12
go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
echo "install-tools: actionlint ${ACTIONLINT_VERSION} installed in $(go env GOPATH)/bin"
