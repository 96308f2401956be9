#!/usr/bin/env bash
# Runs Tandem's whole test suite on a fresh Debian machine: installs the
# SIP peers the end-to-end tests drive (SIPp, baresip) when missing, then checks
# formatting and lints and runs every unit, property and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "test.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# One-shot builds gain nothing from incremental caches (1.5 GB here).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Wasm plugins, a workspace of their own: format, lints, the unit tests
# of their logic, then the modules the end-to-end tests load
# (target/plugins/*.wasm).
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo clippy --manifest-path plugins/Cargo.toml --workspace --all-targets --locked -- -D warnings
cargo test --manifest-path plugins/Cargo.toml --workspace --locked
plugins/build.sh
cargo test --workspace --locked
