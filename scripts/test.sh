#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a developer's: installs what the tests
# need if it is missing, then rustfmt, clippy and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests need:
#   kcat    tests/kcat.rs drives Debian's kcat (librdkafka 2.0.2) as an old, real client.
#   procps  /bin/kill: the tests stop brokers with `kill -TERM` (a shell builtin is not enough).
#   g++     librdkafka's ./configure (built inside rdkafka-sys) refuses to run without a C++
#           compiler. zlib and zstd need no -dev packages: libz-sys and zstd-sys build their
#           bundled sources when the system's are missing, and ssl, sasl and curl are off.
#   iproute2, iptables  tests/replication.rs puts nodes in network namespaces and cuts links between them.
#   python3-venv  compat-tests/python keeps its pinned clients in a virtualenv under target/.
#   prometheus  tests/metrics.rs has a real Prometheus scrape the ops listener, and promtool parse /metrics.
# compat-tests/librdkafka/run.sh installs the -dev packages its librdkafka build needs itself.
missing=()
installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }
installed kcat || missing+=(kcat)
type -P kill >/dev/null || missing+=(procps)
type -P ip >/dev/null || missing+=(iproute2)
type -P iptables >/dev/null || missing+=(iptables)
type -P g++ >/dev/null || type -P clang++ >/dev/null || type -P c++ >/dev/null || missing+=(g++)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
{ type -P prometheus && type -P promtool; } >/dev/null || missing+=(prometheus)

step "System packages"
if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then sudo=(sudo); fi
    echo "installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "all present"
fi

# A minimal rustup profile lacks these two.
if ! cargo fmt --version >/dev/null 2>&1; then
    step "Rust component rustfmt"
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
    step "Rust component clippy"
    rustup component add clippy
fi

export RUST_BACKTRACE=1

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# tests/docker.rs runs the ferrite:dev image; it must be built from this tree first. Where there is a Docker engine
# (and always in CI) the test must run, not skip.
if docker info >/dev/null 2>&1; then
    step "docker/build.sh (static binary, image ferrite:dev)"
    docker/build.sh
    export FERRITE_REQUIRE_DOCKER=1
elif [[ "${CI:-}" == true ]]; then
    echo "error: CI has no usable Docker engine; tests/docker.rs cannot run" >&2
    exit 1
else
    step "no Docker engine: tests/docker.rs will report itself SKIPPED"
fi

step "cargo test --workspace"
cargo test --workspace

step "compat-tests/python (confluent-kafka, kafka-python, aiokafka, kcat)"
compat-tests/python/run.sh -q -p no:logging

step "compat-tests/librdkafka (librdkafka's own suite, tests.allow)"
compat-tests/librdkafka/run.sh

step "compat-tests/librdkafka on a three-node cluster (tests.cluster.allow)"
LIBRDKAFKA_BROKERS=3 compat-tests/librdkafka/run.sh
