#!/bin/sh
# Kafka's kafka-configs.sh, served by `ferrite admin configs` (same flags; see README, "Administration").
exec "$(dirname "$(readlink -f "$0")")/ferrite-admin" configs "$@"
