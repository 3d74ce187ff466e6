#!/bin/sh
# Kafka's kafka-consumer-groups.sh, served by `ferrite admin consumer-groups` (same flags; see README, "Administration").
exec "$(dirname "$(readlink -f "$0")")/ferrite-admin" consumer-groups "$@"
