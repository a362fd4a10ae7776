#!/usr/bin/env bash
# Runs every cargo-fuzz target in crates/peregrine-core/fuzz for FUZZ_SECONDS seconds
# each (default 25) and exits non-zero if any of them crashes or breaks an invariant.
# docs/security.md ("Fuzzing") describes the targets.
#
#   bash scripts/fuzz.sh                         # CI: about 25 s per target
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh       # an hour per target
#   FUZZ_TARGETS="chunked guard_scan" bash scripts/fuzz.sh
#   FUZZ_TOOLCHAIN=stable bash scripts/fuzz.sh   # force stable with RUSTC_BOOTSTRAP=1
#   FUZZ_SANITIZER=address bash scripts/fuzz.sh  # with AddressSanitizer (about 4x slower)
#
# Inputs that crash are saved to crates/peregrine-core/fuzz/artifacts/<target>/; replay one
# with `cargo fuzz run --fuzz-dir crates/peregrine-core/fuzz <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_DIR=crates/peregrine-core/fuzz
seconds="${FUZZ_SECONDS:-25}"
# The fuzzed code is safe Rust: without AddressSanitizer the targets build about a third
# faster and run about four times as many inputs, while overflow checks and debug
# assertions stay on.
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "::: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

# cargo fuzz passes unstable rustc flags. Use an installed nightly; without
# one, RUSTC_BOOTSTRAP=1 lets stable accept them (nightly cannot be downloaded offline).
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ] && command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
  toolchain=nightly
fi
if [ "$toolchain" = nightly ]; then
  export RUSTUP_TOOLCHAIN=nightly
else
  if [ -n "$toolchain" ]; then export RUSTUP_TOOLCHAIN="$toolchain"; fi
  export RUSTC_BOOTSTRAP=1
fi
echo "::: toolchain: $(rustc --version)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"

# Seeds: the request-smuggling corpus, written at run time (not committed).
if command -v node >/dev/null 2>&1 && [ -d node_modules/typescript ]; then
  node "$FUZZ_DIR/seeds.mjs" "$FUZZ_DIR/corpus"
else
  echo "::: no node or node_modules/typescript: fuzzing without the smuggling seeds"
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir "$FUZZ_DIR")}"

echo "::: building the fuzz targets"
cargo fuzz build --fuzz-dir "$FUZZ_DIR" --sanitizer "$sanitizer"

failed=()
for target in $targets; do
  echo "::: fuzzing $target for ${seconds}s"
  mkdir -p "$FUZZ_DIR/corpus/$target"
  if ! cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)" >&2
  exit 1
fi
echo "::: fuzzing passed: ${targets//$'\n'/ }"
