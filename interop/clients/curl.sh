#!/usr/bin/env bash
# `curl -N` as a Herald subscriber, for the client matrix
# (../matrix.test.mjs).
#
# Usage: HERALD_TOKEN=… curl.sh URL RAW_FILE   (HERALD_BIN: the herald binary)
#
# curl prints the stream as it comes; `herald decode` turns it into one
# JSON line per event ({"type", "data", "last_event_id"}). curl does not
# reconnect: this loop does, sending the id of the last complete event as
# Last-Event-ID (an `id:` line of an event cut off before its blank line
# does not count). Every byte received is also appended to RAW_FILE.
set -uo pipefail
url=$1 raw=$2
herald=${HERALD_BIN:-herald}
last=""
conn=$(mktemp)
trap 'rm -f "$conn"' EXIT
trap 'exit 0' TERM INT
while :; do
  args=(-N -sS -H "Authorization: Bearer $HERALD_TOKEN")
  [ -n "$last" ] && args+=(-H "Last-Event-ID: $last")
  echo "connect${last:+ with Last-Event-ID: $last}" >&2
  : >"$conn"
  curl "${args[@]}" "$url" | tee -a "$raw" | "$herald" decode | tee "$conn"
  id=$(sed -n 's/.*"last_event_id": *"\([^"]*\)".*/\1/p' "$conn" | tail -n 1)
  [ -n "$id" ] && last=$id
  sleep 0.2
done
