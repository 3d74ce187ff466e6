#!/bin/sh
# Kafka's kafka-storage.sh (format -t <id> -c <file> [-g], random-uuid), served by `ferrite admin storage`.
exec "$(dirname "$(readlink -f "$0")")/ferrite-admin" storage "$@"
