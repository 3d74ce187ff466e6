#!/usr/bin/env bash
# librdkafka's own integration suite against a Ferrite node, or a three-node Ferrite cluster.
#
#   run.sh                 build (cached), run every test in tests.allow; fail if any of them fails
#   run.sh NAME...         run just these tests (full names, e.g. 0001_multiobj), allowed or not
#   run.sh --sweep         run every broker test of the suite, allowed or not, and write a table of results
#   run.sh --list          print the suite's broker tests: name, flags, scenario
#   run.sh --build         only build librdkafka and its test-runner (cached)
#
# The source is the librdkafka tree bundled in the rdkafka-sys crate of our dev-dependencies (never a download). It
# is copied under target/, patched (tests-exact.patch: select one test by full name; skip named subtests) and built
# once; the build is reused until the version, the patch or the configure flags change.
#
# Environment: FERRITE_BIN (default: target/debug/ferrite, built if needed), TEST_TIMEOUT_S (outer timeout per test,
# default 300), LIBRDKAFKA_KEEP_LOGS=1 (keep the broker's data and logs), LIBRDKAFKA_FULL=1 (not quick mode),
# SUBTESTS=x (librdkafka's own: only subtests whose name contains x), SUBTESTS_SKIP=x,y (ours: not those).
#
# Cluster mode: LIBRDKAFKA_BROKERS=3 starts three combined ferrite processes instead of one (broker and controller
# each, node ids 1 to 3, one quorum, one cluster id, the single node's flags plus, as in librdkafka's reference
# cluster, default.replication.factor=3 and broker.rack=RACK<id>), gives librdkafka all three as bootstrap servers
# (test.conf's bootstrap.servers, BROKERS) and stops them all at the end (SIGTERM, SIGKILL after 15 s). Every mode
# above works the same, but `run.sh` alone runs tests.cluster.allow instead of tests.allow (whose skip= options still
# apply to tests that list does not name), and results and logs go to target/librdkafka/results-cluster-*.tsv and
# logs-cluster/. Without LIBRDKAFKA_BROKERS (or with 1) nothing changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

LIBRDKAFKA_VERSION=2.12.1
CRATE=rdkafka-sys-4.10.0+$LIBRDKAFKA_VERSION
# The Kafka release whose API versions Ferrite advertises (kafka-protocol's Kafka 4.1 schemas): the suite gates
# tests on it (e.g. 0092_mixed_msgver does not apply to 4.x brokers).
export TEST_KAFKA_VERSION=4.1.0
# No curl: only the OIDC test (0126, needs a SASL listener anyway) uses it.
CONFIGURE_FLAGS=(--disable-curl)
CACHE="$root/target/librdkafka/$LIBRDKAFKA_VERSION"
TREE="$CACHE/tree"
RUNNER="$TREE/tests/test-runner"
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-300}
# -Q, quick mode, skips the subtests librdkafka marks slow; LIBRDKAFKA_FULL=1 runs them too. A test marked `full`
# in tests.allow (one whose subtests are all marked slow) always runs in full mode.
QUICK=-Q
if [[ "${LIBRDKAFKA_FULL:-0}" == 1 ]]; then QUICK=; fi
BROKER_COUNT=${LIBRDKAFKA_BROKERS:-1}

say() { printf '[librdkafka] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

mode=allow
requested=()
case "${1:-}" in
--sweep) mode=sweep ;;
--list) mode=list ;;
--build) mode=build ;;
-h | --help)
    sed -n '2,24p' "$0"
    exit 0
    ;;
"") ;;
*)
    mode=named
    requested=("$@")
    ;;
esac
[[ $BROKER_COUNT =~ ^[1-9]$ ]] || die "LIBRDKAFKA_BROKERS=$BROKER_COUNT: a number of brokers from 1 to 9 (3 for the cluster)"

# --- Debian packages the build needs --------------------------------------------------------------------------------
install_packages() {
    local missing=() p
    # g++/make: librdkafka and the C++ tests; zstd, lz4, zlib, ssl, sasl: the codecs and security modules a
    # distribution's librdkafka has (0017_compression covers every codec); rapidjson: 0053_stats validates its JSON.
    for p in build-essential pkg-config patch libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev rapidjson-dev; do
        [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "installing: ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

source_tree() {
    local dir
    for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$CRATE"/librdkafka; do
        [[ -f "$dir/configure" ]] && { echo "$dir"; return 0; }
    done
    return 1
}

build_librdkafka() {
    local stamp_want stamp_file="$CACHE/.built"
    stamp_want="$LIBRDKAFKA_VERSION ${CONFIGURE_FLAGS[*]} $(sha256sum "$here/tests-exact.patch" | cut -c1-16)"
    if [[ -x "$RUNNER" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp_want" ]]; then
        say "using the cached build in ${CACHE#"$root"/}"
        return 0
    fi
    install_packages
    local src
    if ! src=$(source_tree); then
        say "$CRATE is not in the cargo registry yet; fetching the workspace's dependencies"
        cargo fetch --quiet
        src=$(source_tree) || die "$CRATE not found under ${CARGO_HOME:-$HOME/.cargo}/registry/src"
    fi
    say "building librdkafka $LIBRDKAFKA_VERSION and its test-runner from $src (a few minutes, once)"
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    cp -a "$src" "$TREE"
    patch -s -d "$TREE" -p1 <"$here/tests-exact.patch"
    local jobs
    jobs=$(nproc)
    (
        cd "$TREE"
        ./configure "${CONFIGURE_FLAGS[@]}" >"$CACHE/configure.log" 2>&1 || { tail -40 "$CACHE/configure.log"; exit 1; }
        make -j"$jobs" libs >"$CACHE/make-libs.log" 2>&1 || { tail -40 "$CACHE/make-libs.log"; exit 1; }
        make -j"$jobs" -C tests build >"$CACHE/make-tests.log" 2>&1 || { tail -40 "$CACHE/make-tests.log"; exit 1; }
    ) || die "librdkafka build failed (logs in ${CACHE#"$root"/})"
    [[ -x "$RUNNER" ]] || die "no $RUNNER after the build"
    echo "$stamp_want" >"$stamp_file"
}

# --- The suite's test table -----------------------------------------------------------------------------------------
# One line per test of tests/test.c: name, flags, scenario.
test_table() {
    local testc
    if [[ -f "$TREE/tests/test.c" ]]; then testc="$TREE/tests/test.c"; else testc="$(source_tree)/tests/test.c"; fi
    sed -n '/^struct test tests\[\] = {/,/{NULL}};/p' "$testc" |
        awk 'BEGIN { RS = "_TEST\\(" }
             NR > 1 {
                 gsub(/[ \t\n]+/, " ")
                 n = split($0, f, ",")
                 name = f[1]; flags = f[2]; gsub(/[ )]/, "", flags)
                 scenario = "default"
                 if (match($0, /\.scenario = "[^"]*"/)) scenario = substr($0, RSTART + 13, RLENGTH - 14)
                 print name, flags, scenario
             }'
}

# Broker tests: everything but local-only (mock cluster or no broker), manual and socket-emulation tests.
broker_tests() {
    test_table | awk '$2 !~ /TEST_F_LOCAL|TEST_F_MANUAL|TEST_F_SOCKEM/'
}

if [[ $mode == list ]]; then
    broker_tests
    exit 0
fi

# --- Ferrite --------------------------------------------------------------------------------------------------------
ferrite_bin() {
    if [[ -n "${FERRITE_BIN:-}" ]]; then
        [[ -x "$FERRITE_BIN" ]] || die "FERRITE_BIN=$FERRITE_BIN is not executable"
        # Absolute: bin/ferrite-admin (KAFKA_PATH's kafka-*.sh) runs it too, from test-runner's directory.
        echo "$(cd "$(dirname "$FERRITE_BIN")" && pwd)/$(basename "$FERRITE_BIN")"
        return
    fi
    cargo build --quiet -p ferrite --bin ferrite >&2
    echo "$root/target/debug/ferrite"
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-librdkafka.XXXXXX")
declare -A BROKER_PID=() BROKER_ADDR=()
TEST_PID=
# BROKER_PID[scenario] holds the scenario's broker pids (one, or one per cluster node), BROKER_ADDR its bootstrap list.
# Stops the brokers of the scenarios named: SIGTERM to all at once, then SIGKILL to any still running after 15 s.
stop_brokers() {
    local pid pids=() s i
    for s in "$@"; do
        pids+=(${BROKER_PID[$s]:-})
        unset "BROKER_PID[$s]"
    done
    ((${#pids[@]})) || return 0
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 1 150); do
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
        [[ -n $pid ]] || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
cleanup() {
    [[ -z $TEST_PID ]] || kill -TERM "$TEST_PID" 2>/dev/null || true
    stop_brokers "${!BROKER_PID[@]}"
    if [[ "${LIBRDKAFKA_KEEP_LOGS:-0}" == 1 ]]; then say "broker data and logs kept in $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Starts (or restarts) the broker for a test scenario: `default` auto-creates topics as librdkafka's reference
# setup does (4 partitions); `noautocreate` does not.
start_broker() {
    local scenario=$1 dir="$RUN_DIR/$1" flags=()
    mkdir -p "$dir"
    flags=(--listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0 --ops.listener=127.0.0.1:0 "--log.dirs=$dir/data" --num.partitions=4
        --default.replication.factor=1)
    [[ $scenario == noautocreate ]] && flags+=(--auto.create.topics.enable=false)
    # Consumer-group tests join one after another; Kafka's 3 s initial rebalance delay would only slow them down.
    if grep -qa 'group.initial.rebalance.delay.ms' "$FERRITE"; then flags+=(--group.initial.rebalance.delay.ms=100); fi
    "$FERRITE" "${flags[@]}" >>"$dir/ferrite.log" 2>&1 &
    local pid=$! addr="" i
    for i in $(seq 1 300); do
        addr=$(grep -a 'ferrite is listening' "$dir/ferrite.log" 2>/dev/null | tail -1 | sed -n 's/.*local_addr=\([0-9.:]*\).*/\1/p' || true)
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/ferrite.log" >&2; die "ferrite exited during start-up"; }
        sleep 0.1
    done
    [[ -n $addr ]] || die "ferrite did not report its address within 30 s"
    BROKER_PID[$scenario]=$pid
    BROKER_ADDR[$scenario]=$addr
    cat >"$dir/test.conf" <<EOF
bootstrap.servers=$addr
broker.address.family=v4
test.topic.random=true
test.timeout.multiplier=2
EOF
    say "ferrite ($scenario scenario) on $addr, pid $pid"
}

# Cluster mode: starts (or restarts) BROKER_COUNT combined nodes for a scenario, each in $RUN_DIR/SCENARIO/node-N,
# with the flags start_broker passes plus the cluster's. Every node must run before any finishes starting.
start_cluster() {
    local scenario=$1 dir="$RUN_DIR/$1" n ports id voters="" flags=() pids=() addrs=() i addr
    mkdir -p "$dir"
    # Free ports (client and controller per node), all bound at once so that they differ, then released.
    ports=($(python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' $((2 * BROKER_COUNT)))) || die "python3 is needed to pick free ports"
    id=$("$FERRITE" random-uuid)
    # librdkafka's reference cluster (tests/cluster_testing.py): replication factor min(brokers, 3), a rack per broker.
    local rf=$((BROKER_COUNT < 3 ? BROKER_COUNT : 3))
    for n in $(seq 1 "$BROKER_COUNT"); do voters+="${voters:+,}$n@127.0.0.1:${ports[2 * n - 1]}"; done
    for n in $(seq 1 "$BROKER_COUNT"); do
        flags=("--node.id=$n" --process.roles=broker,controller --ops.listener=127.0.0.1:0
            "--listeners=PLAINTEXT://127.0.0.1:${ports[2 * n - 2]},CONTROLLER://127.0.0.1:${ports[2 * n - 1]}"
            "--controller.quorum.voters=$voters" "--log.dirs=$dir/node-$n/data" "--cluster.id=$id"
            "--broker.rack=RACK$n" --num.partitions=4 "--default.replication.factor=$rf")
        [[ $scenario == noautocreate ]] && flags+=(--auto.create.topics.enable=false)
        if grep -qa 'group.initial.rebalance.delay.ms' "$FERRITE"; then flags+=(--group.initial.rebalance.delay.ms=100); fi
        mkdir -p "$dir/node-$n"
        "$FERRITE" "${flags[@]}" >>"$dir/node-$n/ferrite.log" 2>&1 &
        pids+=($!)
        addrs+=("127.0.0.1:${ports[2 * n - 2]}")
    done
    BROKER_PID[$scenario]="${pids[*]}"
    for n in $(seq 1 "$BROKER_COUNT"); do
        for i in $(seq 1 600); do
            addr=$(grep -a 'ferrite is listening' "$dir/node-$n/ferrite.log" 2>/dev/null | tail -1 || true)
            [[ -n $addr ]] && break
            if ! kill -0 "${pids[n - 1]}" 2>/dev/null; then
                tail -20 "$dir/node-$n/ferrite.log" >&2
                stop_brokers "$scenario"
                die "ferrite node $n exited during start-up"
            fi
            sleep 0.1
        done
        [[ -n $addr ]] || { stop_brokers "$scenario"; die "ferrite node $n was not listening within 60 s"; }
    done
    BROKER_ADDR[$scenario]=$(IFS=,; echo "${addrs[*]}")
    cat >"$dir/test.conf" <<EOF
bootstrap.servers=${BROKER_ADDR[$scenario]}
broker.address.family=v4
test.topic.random=true
test.timeout.multiplier=2
EOF
    say "ferrite cluster ($scenario scenario) of $BROKER_COUNT nodes on ${BROKER_ADDR[$scenario]}, pids ${pids[*]}"
}

# The scenario's brokers all run (a cluster with a dead node counts as down).
brokers_alive() {
    local pid
    [[ -n "${BROKER_PID[$1]:-}" ]] || return 1
    for pid in ${BROKER_PID[$1]}; do kill -0 "$pid" 2>/dev/null || return 1; done
}

broker_for() {
    local scenario=$1
    if ((BROKER_COUNT > 1)); then
        if ! brokers_alive "$scenario"; then
            [[ -z "${BROKER_PID[$scenario]:-}" ]] || stop_brokers "$scenario"
            start_cluster "$scenario"
        fi
    elif [[ -z "${BROKER_PID[$scenario]:-}" ]] || ! kill -0 "${BROKER_PID[$scenario]}" 2>/dev/null; then
        start_broker "$scenario"
    fi
}

# --- Running tests --------------------------------------------------------------------------------------------------
# Runs one test in its own test-runner process; sets STATE to PASSED, FAILED, SKIPPED, VACUOUS or TIMEOUT (not printed: a
# command substitution would run this in a subshell, and the brokers it starts would be lost to this shell).
STATE=
run_test() {
    local name=$1 scenario=$2 log=$3 mode_flag=$4 skip=$5 rc=0 state
    broker_for "$scenario"
    local dir="$RUN_DIR/$scenario"
    (
        cd "$TREE/tests"
        # With CI set, test-runner skips some tests (0055_producer_latency: "not reliable on CI") and stretches
        # timeouts; the allow-list was made without it, and a skipped test is no pass. test.conf sets the timeouts.
        unset CI
        export LD_LIBRARY_PATH="$TREE/src:$TREE/src-cpp" RDKAFKA_TEST_CONF="$dir/test.conf" \
            TESTS="${name%%_*}" TESTS_EXACT="$name" TEST_SCENARIO="$scenario" SUBTESTS_SKIP="$skip"
        # Tests that run Kafka's shell tools find bin/kafka-topics.sh and friends (ferrite admin) here.
        export KAFKA_PATH="$root" BROKERS="${BROKER_ADDR[$scenario]}"
        exec timeout -k 10 "$TEST_TIMEOUT_S" stdbuf -oL -eL ./test-runner $mode_flag -E -L
    ) >"$log" 2>&1 &
    # In the background, so that a signal to this script is handled at once, not after the test.
    TEST_PID=$!
    # (wait's stderr: bash reports a test-runner that aborted, which the log already shows)
    wait "$TEST_PID" 2>/dev/null || rc=$?
    TEST_PID=
    if ((rc == 124 || rc == 137)); then
        state=TIMEOUT
    else
        state=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk -v n="$name" -F'|' '{ gsub(/ /, "", $2); gsub(/ /, "", $3) } $2 == n { s = $3 } END { print s }')
        [[ -n $state ]] || state=FAILED
        ((rc == 0)) || [[ $state != PASSED ]] || state=FAILED
        # In quick mode a test whose every subtest is marked slow returns at once and "passes" having done
        # nothing (its duration is a few microseconds). That is no pass: such tests are allowed in full mode.
        if [[ $state == PASSED ]] && sed 's/\x1b\[[0-9;]*m//g' "$log" |
            grep -qE "\] $name: duration 0\.[0-9]+ms"; then
            state=VACUOUS
        fi
    fi
    if ((BROKER_COUNT > 1)); then
        if ! brokers_alive "$scenario"; then
            local n=0 pid
            for pid in ${BROKER_PID[$scenario]}; do
                n=$((n + 1))
                kill -0 "$pid" 2>/dev/null && continue
                echo "ferrite node $n died during $name; see its log below" >>"$log"
                tail -50 "$dir/node-$n/ferrite.log" >>"$log"
            done
            state="$state(BROKER-DIED)"
            # The next test gets a whole new cluster.
            stop_brokers "$scenario"
        fi
    elif ! kill -0 "${BROKER_PID[$scenario]}" 2>/dev/null; then
        echo "ferrite died during $name; see its log below" >>"$log"
        tail -50 "$dir/ferrite.log" >>"$log"
        state="$state(BROKER-DIED)"
        wait "${BROKER_PID[$scenario]}" 2>/dev/null || true
        unset "BROKER_PID[$scenario]"
    fi
    STATE=$state
}

if [[ $mode == build ]]; then
    build_librdkafka
    exit 0
fi
FERRITE=$(ferrite_bin)
[[ -z "${FERRITE_BIN:-}" ]] || export FERRITE_BIN=$FERRITE
build_librdkafka

declare -A SCENARIO=()
while read -r name _flags scenario; do SCENARIO[$name]=$scenario; done < <(test_table)

# The allow list: tests.allow, or tests.cluster.allow in cluster mode.
ALLOW=tests.allow
((BROKER_COUNT == 1)) || ALLOW=tests.cluster.allow
[[ -f "$here/$ALLOW" ]] || die "no $ALLOW"
# The allow lists' options. `skip=` applies whenever the test runs (a sweep or a named run too: the subtests it names
# need features Ferrite lacks); `full` applies to the allow-list run (named runs follow LIBRDKAFKA_FULL). In cluster
# mode tests.allow's skip= options apply too, unless tests.cluster.allow names the test; its `full` marks do not.
declare -A FULL=() SKIP=()
read_options() {
    local list=$1 run=$2 name options option
    while read -r name options; do
        unset "SKIP[$name]"
        for option in $options; do
            case $option in
            full) [[ $mode != allow || $run == 0 ]] || FULL[$name]=1 ;;
            skip=*) SKIP[$name]=${option#skip=} ;;
            *) die "$list: unknown option $option for $name" ;;
            esac
        done
    done < <(sed 's/#.*//' "$here/$list" | awk 'NF')
}
[[ $ALLOW == tests.allow ]] || read_options tests.allow 0
read_options "$ALLOW" 1
case $mode in
allow)
    mapfile -t tests < <(sed 's/#.*//' "$here/$ALLOW" | awk 'NF { print $1 }')
    ((${#tests[@]})) || die "$ALLOW is empty"
    ;;
named) tests=("${requested[@]}") ;;
sweep) mapfile -t tests < <(broker_tests | awk '{ print $1 }') ;;
esac
for name in "${tests[@]}"; do
    [[ -n "${SCENARIO[$name]:-}" ]] || die "no test named $name in librdkafka $LIBRDKAFKA_VERSION"
done

LOGS="$root/target/librdkafka/logs"
RESULTS="$root/target/librdkafka/results-$mode.tsv"
if ((BROKER_COUNT > 1)); then
    LOGS="$root/target/librdkafka/logs-cluster"
    RESULTS="$root/target/librdkafka/results-cluster-$mode.tsv"
fi
mkdir -p "$LOGS"
: >"$RESULTS"
cluster_note=
((BROKER_COUNT == 1)) || cluster_note=", $BROKER_COUNT brokers"
say "running ${#tests[@]} tests (TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION, ${QUICK:+quick mode, }no sockem$cluster_note); logs in ${LOGS#"$root"/}"
failed=()
start_all=$SECONDS
for name in "${tests[@]}"; do
    scenario=${SCENARIO[$name]%%,*}
    t0=$SECONDS
    flag=$QUICK
    [[ -z "${FULL[$name]:-}" ]] || flag=
    run_test "$name" "$scenario" "$LOGS/$name.log" "$flag" "${SKIP[$name]:-${SUBTESTS_SKIP:-}}"
    state=$STATE
    [[ -n $flag ]] || state="$state(full)"
    [[ -z "${SKIP[$name]:-}" ]] || state="$state(skips)"
    secs=$((SECONDS - t0))
    printf '%-45s %-20s %4ds\n' "$name" "$state" "$secs" >&2
    printf '%s\t%s\t%s\n' "$name" "$state" "$secs" >>"$RESULTS"
    [[ $state =~ ^PASSED(\(full\))?(\(skips\))?$ ]] || failed+=("$name")
done

passed=$((${#tests[@]} - ${#failed[@]}))
say "$passed of ${#tests[@]} passed in $((SECONDS - start_all)) s; results in ${RESULTS#"$root"/}"
if ((${#failed[@]})); then
    say "not passed: ${failed[*]}"
    if [[ $mode != sweep ]]; then
        for name in "${failed[@]}"; do
            say "--- last lines of $name's log ---"
            tail -25 "$LOGS/$name.log" >&2
        done
    fi
fi
# The closing line CI reads.
if ((BROKER_COUNT == 1)); then
    echo "librdkafka: $passed passed, ${#failed[@]} failed"
else
    echo "librdkafka ($BROKER_COUNT brokers): $passed passed, ${#failed[@]} failed"
fi
[[ $mode == sweep ]] || ((${#failed[@]} == 0))
