#!/usr/bin/env bash
# Three combined Ferrite nodes on 127.0.0.1 (client ports 19092, 19192, 19292; controller ports one above each), one
# quorum, data under ${BENCH_DIR:-/tmp/ferrite-bench-cluster}, for benchmarks of replication (docs/benchmarks.md).
# Prints the bootstrap list, then waits; Ctrl-C (or SIGTERM) stops all three. Extra arguments go to every node.
#
#   cargo build --release -p ferrite -p ferrite-bench
#   bench/three-nodes.sh &
#   target/release/ferrite-bench produce --bootstrap 127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292 ...
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/ferrite
dir=${BENCH_DIR:-/tmp/ferrite-bench-cluster}
rm -rf "$dir"
mkdir -p "$dir"
cluster_id=$("$binary" random-uuid)
voters="1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293"

pids=()
stop() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

for id in 1 2 3; do
    client=$((18992 + 100 * id))
    "$binary" --node.id="$id" --process.roles=broker,controller \
        --listeners="PLAINTEXT://127.0.0.1:$client,CONTROLLER://127.0.0.1:$((client + 1))" \
        --controller.quorum.voters="$voters" --cluster.id="$cluster_id" --ops.listener="127.0.0.1:$((client + 2))" \
        --log.dirs="$dir/node-$id" "$@" 2>"$dir/node-$id.log" &
    pids+=($!)
done

for id in 1 2 3; do
    until grep -q "ferrite is listening" "$dir/node-$id.log" 2>/dev/null; do
        if ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null; then
            echo "node $id stopped; see $dir/node-$id.log" >&2
            exit 1
        fi
        sleep 0.2
    done
done
echo "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
wait
