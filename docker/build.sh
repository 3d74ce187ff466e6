#!/usr/bin/env bash
# Builds a statically linked release binary of ferrite and the image ferrite:dev (or the tag given as $1).
# Needs only a Docker engine (legacy builder, no registry access): the image is FROM scratch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tag=${1:-ferrite:dev}
target=x86_64-unknown-linux-gnu

echo "==> static ferrite binary (--target $target, crt-static)"
# --target keeps these artifacts in target/$target/, apart from the workspace's ordinary builds, whose RUSTFLAGS
# differ.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" -p ferrite --bin ferrite
bin="target/$target/release/ferrite"
# A FROM scratch image has no dynamic loader: the binary must not need one.
if ! ldd "$bin" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "error: $bin is dynamically linked:" >&2
    ldd "$bin" >&2
    exit 1
fi

echo "==> image $tag"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# Function names stay for backtraces; line tables would quadruple the image.
strip --strip-debug -o "$context/ferrite" "$bin"
mkdir -p "$context/rootfs/tmp" "$context/data"
chmod 1777 "$context/rootfs/tmp"
cp docker/Dockerfile "$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" "$context"
docker image inspect "$tag" --format '{{.Id}} {{.Size}} bytes'
