#!/usr/bin/env bash
# Builds the linux-x64-musl addon (for Alpine and other musl distributions) on a glibc
# Debian or Ubuntu host: `npm run build:native:musl`. Optional, and not part of
# `npm install`; the release workflow builds the published musl binaries. It needs the
# musl target and Debian's musl-tools:
#   rustup target add x86_64-unknown-linux-musl
#   apt-get install musl-tools
# The binary lands beside the glibc one in packages/native. It cannot be loaded here
# (that needs a Node.js built for musl); it records NEEDED libc.so and libgcc_s.so.1,
# which musl's loader and Alpine's libgcc package provide.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
  echo "build-native-musl: the $target target is missing: rustup target add $target" >&2
  exit 1
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  echo "build-native-musl: musl-gcc is missing: apt-get install musl-tools" >&2
  exit 1
fi

# A Node addon must link musl's libc dynamically, so the static CRT is off. rustc then
# links libgcc_s for unwinding, which musl-gcc does not search for: point it at the
# host's copy. Only the soname is recorded, and no glibc symbol comes with it.
libgcc=$(gcc -print-file-name=libgcc_s.so.1)
if [ ! -f "$libgcc" ]; then
  echo "build-native-musl: gcc's libgcc_s.so.1 is missing: apt-get install gcc" >&2
  exit 1
fi
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir/musl-libgcc"
ln -sf "$libgcc" "$target_dir/musl-libgcc/libgcc_s.so"

export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc
# RUSTFLAGS, not the per-target variable: napi build sets RUSTFLAGS for musl targets,
# which would override it. With --target it does not reach the host's build scripts.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=-crt-static -L $(cd "$target_dir/musl-libgcc" && pwd)"
npx --no-install napi build --platform --release --target "$target" \
  --manifest-path crates/peregrine-node/Cargo.toml --package-json-path packages/native/package.json \
  --output-dir packages/native --js index.cjs --dts index.d.cts

binary=packages/native/peregrine.linux-x64-musl.node
if readelf -d "$binary" | grep -q 'libc\.so\.6'; then
  echo "build-native-musl: $binary links glibc (libc.so.6); the musl linker was not used" >&2
  exit 1
fi
echo "build-native-musl: built $binary"
