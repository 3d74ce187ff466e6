#!/bin/sh
# Kafka's kafka-topics.sh, served by `ferrite admin topics` (same flags; see README, "Administration").
exec "$(dirname "$(readlink -f "$0")")/ferrite-admin" topics "$@"
