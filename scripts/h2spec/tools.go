//go:build tools

// Package tools pins h2spec and its dependencies (go.mod, go.sum) so that
// scripts/install-tools.sh installs the same build everywhere.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
