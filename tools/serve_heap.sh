#!/usr/bin/env bash
# The agent's own heap line after boot, as `dmagent serve` logs it: the demo config, one TCP
# link, a state folder, one key (or --insecure with `nokeys`).
#   tools/serve_heap.sh RUNTIME HEAP [nokeys]   e.g. tools/serve_heap.sh micropython 110k
#   -> heap N bytes in use, M free
set -u
cd "$(dirname "$0")/.."
RUNTIME=${1:?usage: tools/serve_heap.sh RUNTIME HEAP [nokeys]}; HEAP=${2:?usage: tools/serve_heap.sh RUNTIME HEAP [nokeys]}
WORK=$(mktemp -d); trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/keys" "$WORK/state"
echo '{"principal": "ServerA", "key": "11111111111111111111111111111111"}' > "$WORK/keys/ServerA.key"
chmod 600 "$WORK/keys/ServerA.key"
AUTH=(--keys "$WORK/keys"); [ "${3:-}" = nokeys ] && AUTH=(--insecure)
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/dmagent serve --runtime "$RUNTIME" --heap "$HEAP" --tcp 127.0.0.1:$PORT --state "$WORK/state" \
    --config boards/unix/demo-config.json "${AUTH[@]}" > "$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do grep -q "bytes in use" "$WORK/log" && break; sleep 0.25; done
grep -o "heap [0-9]* bytes in use, [0-9]* free" "$WORK/log" || { echo "no heap line:" >&2; tail -5 "$WORK/log" >&2; exit 1; }
