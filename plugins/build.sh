#!/usr/bin/env bash
# Builds Tandem's example plugins (plugins/lcr, headers, misbehave) for
# wasm32-unknown-unknown in release, into target/plugins/, and copies the
# modules to target/plugins/NAME.wasm. Each module carries the component
# type wit-bindgen embeds; Tandem turns it into a component when it loads
# it.
#
# With a rustup toolchain that has the wasm32-unknown-unknown target
# (`rustup target add wasm32-unknown-unknown`) this is a plain
# `cargo build`. Without it, the script fetches Debian's rustc-web (a rustc
# whose LLVM has the WebAssembly backend) and the Rust sources with
# apt-get, unpacks them under target/wasm-toolchain/ (once), and builds the
# standard library for wasm32 with -Zbuild-std, linking with rustup's
# rust-lld (delete target/wasm-toolchain/ to fetch a newer rustc-web).
#
# Runs from any directory; a second run with nothing changed takes about a
# second. Concurrent runs wait for each other, and every cargo call holds
# the machine's cargo lock (TANDEM_CARGO_LOCK, default
# /tmp/tandem-cargo.lock; empty: none) unless the caller holds it already.
set -euo pipefail

plugins_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$plugins_dir/.." && pwd)"
out="$root/target/plugins"
toolchain="$root/target/wasm-toolchain"
target=wasm32-unknown-unknown
cargo_lock="${TANDEM_CARGO_LOCK-/tmp/tandem-cargo.lock}"
plugins=(lcr headers misbehave)

mkdir -p "$out"
# One run of this script at a time (the toolchain unpack included).
exec 8>"$out/.build.lock"
flock 8

# Whether our caller holds the cargo lock already (`flock LOCK ./test.sh`,
# or `exec 9>LOCK; flock 9` before running us): taking it again would wait
# for ourselves forever. flock(1) hands its locked descriptor down to the
# command, and locking a descriptor that holds the lock succeeds at once.
cargo_lock_held_above() {
  [ -e "$cargo_lock" ] || return 1
  local lock_id fd
  lock_id="$(stat -L -c %d:%i "$cargo_lock")"
  for fd in "/proc/$$/fd"/*; do
    if [ "$(stat -L -c %d:%i "$fd" 2>/dev/null)" = "$lock_id" ] && flock -n "${fd##*/}"; then
      return 0
    fi
  done
  return 1
}

# Runs a cargo command under the machine's cargo lock (none if
# TANDEM_CARGO_LOCK is set empty).
locked_cargo() {
  if [ -z "$cargo_lock" ] || cargo_lock_held_above; then
    cargo "$@"
  else
    flock "$cargo_lock" cargo "$@"
  fi
}

# (Command output is captured before it is matched: `grep -q` quitting
# early would fail the pipeline under pipefail.)
have_rustup_target() {
  command -v rustup >/dev/null 2>&1 || return 1
  local installed
  installed="$(rustup target list --installed 2>/dev/null || true)"
  grep -qx "$target" <<<"$installed"
}

# Debian's rustc-web and what it needs, unpacked under $toolchain (once).
fetch_toolchain() {
  if [ -f "$toolchain/.complete" ]; then
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  local policy
  policy="$(apt-cache policy rustc-web 2>/dev/null || true)"
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    echo "build.sh: apt-get update (no candidate for rustc-web yet)"
    $sudo apt-get update -qq
  fi

  # rustc-web, its std sources and x86_64 std, then the versioned
  # libstd-rust-web-1.NN and libllvmNN those depend on (no fixed versions).
  local packages=(rustc-web rust-web-src libstd-rust-web-dev) libstd llvm
  mapfile -t libstd < <(direct_deps "${packages[@]}" | grep -E '^libstd-rust-web-[0-9.]+$' | sort -u)
  ((${#libstd[@]})) || { echo "build.sh: found no libstd-rust-web-1.NN package" >&2; exit 1; }
  mapfile -t llvm < <(direct_deps "${libstd[@]}" | grep -E '^libllvm[0-9]+$' | sort -u)
  ((${#llvm[@]})) || { echo "build.sh: found no libllvmNN package" >&2; exit 1; }
  packages+=("${libstd[@]}" "${llvm[@]}")

  local download="$toolchain.download" unpack="$toolchain.unpack"
  rm -rf "$download" "$unpack" "$toolchain"
  mkdir -p "$download" "$unpack"
  # apt fetches as the _apt user when it can write the folder (no warning
  # about an unsandboxed download as root).
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$download"; fi
  echo "build.sh: downloading ${packages[*]}"
  (cd "$download" && apt-get download -q "${packages[@]}" >/dev/null)
  local deb
  for deb in "$download"/*.deb; do
    dpkg -x "$deb" "$unpack"
  done
  # -Zbuild-std needs library/ of the sources only: drop the compiler's
  # and the tools' (about 360 MB).
  rm -rf "$unpack/usr/lib/rustlib/src/rust/compiler" "$unpack/usr/lib/rustlib/src/rust/src"
  (cd "$download" && ls -- *.deb) >"$unpack/PACKAGES"
  touch "$unpack/.complete"
  mv "$unpack" "$toolchain"
  rm -rf "$download"
}

# The packages that the given packages depend on directly, one a line.
direct_deps() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" | awk '$1 ~ /Depends:$/ { print $2 }'
}

# The linker for wasm32: rustup's rust-lld, else Debian's wasm-ld (lld).
wasm_linker() {
  local lld
  if command -v rustc >/dev/null 2>&1; then
    lld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld"
    if [ -x "$lld" ]; then
      echo "$lld"
      return
    fi
  fi
  for lld in rust-lld wasm-ld; do
    if command -v "$lld" >/dev/null 2>&1; then
      command -v "$lld"
      return
    fi
  done
  echo "build.sh: no rust-lld or wasm-ld found (apt-get install lld)" >&2
  exit 1
}

build=(build --release --locked --target "$target" --manifest-path "$plugins_dir/Cargo.toml"
  --target-dir "$out")
for plugin in "${plugins[@]}"; do build+=(-p "tandem-plugin-$plugin"); done

# A 64 KiB stack instead of Rust's 1 MiB default (plugins/.cargo/config.toml
# says the same for builds run inside plugins/): a fresh instance then
# touches, and the host resets, a few pages of memory instead of a megabyte.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C link-arg=-zstack-size=65536"

if have_rustup_target; then
  locked_cargo "${build[@]}"
else
  fetch_toolchain
  linker="$(wasm_linker)"
  libdir="$(echo "$toolchain"/usr/lib/*-linux-gnu)"
  RUSTC="$toolchain/usr/bin/rustc" \
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$linker" \
    locked_cargo "${build[@]}" -Zbuild-std=std,panic_abort
fi

for plugin in "${plugins[@]}"; do
  built="$out/$target/release/tandem_plugin_$plugin.wasm"
  wasm="$out/$plugin.wasm"
  if ! cmp -s "$built" "$wasm"; then
    cp "$built" "$wasm.tmp"
    mv "$wasm.tmp" "$wasm"
  fi
  printf 'build.sh: %-40s %7d bytes\n' "${wasm#"$root"/}" "$(stat -c %s "$wasm")"
done
