#!/usr/bin/env bash
# Memory and descriptors per idle connection: starts a node (2 shards), reads its RSS and
# descriptor count, opens N connections that each send one ApiVersions request and read the
# answer (so both of the connection's tasks exist and have run), waits for the node to settle,
# reads them again, and prints the difference per connection. One quick run, no speed figure.
#
#   bash scripts/bench-idle-connections.sh [N=5000] [debug|release]
#
# SLUICE_BIN overrides the binary; SLUICE_ARGS adds node arguments (e.g. "--set connections.max.idle.ms=-1"). Needs N + 100 descriptors in this shell (`ulimit -n`;
# the script raises its soft limit to the hard one).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
PROFILE=${2:-debug}
if [[ -z "${SLUICE_BIN:-}" ]]; then
  if [[ "$PROFILE" == release ]]; then
    flock /tmp/sluice-machine.lock cargo build -q --release -p sluice-node --bin sluice
  else
    flock /tmp/sluice-machine.lock cargo build -q -p sluice-node --bin sluice
  fi
  SLUICE_BIN=target/$PROFILE/sluice
fi
ulimit -n "$(ulimit -Hn)"
DATA=$(mktemp -d)
OUT=$(mktemp)
trap 'kill "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; rm -rf "$DATA" "$OUT"' EXIT
"$SLUICE_BIN" --listen 127.0.0.1:0 --admin off --data-dir "$DATA" --cores 0-1 ${SLUICE_ARGS:-} >"$OUT" 2>&1 &
NODE=$!
for _ in $(seq 300); do grep -q "sluice: ready" "$OUT" && break; sleep 0.1; done
ADDR=$(grep -o 'kafka=[^ ]*' "$OUT" | cut -d= -f2)
python3 - "$NODE" "$ADDR" "$N" "$SLUICE_BIN" <<'EOF'
import os, socket, struct, sys, time
pid, addr, n, binary = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

# ApiVersions v0, correlation id 1, null client id.
frame = struct.pack(">hhih", 18, 0, 1, -1)
request = struct.pack(">i", len(frame)) + frame

def read_answer(s):
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    (length,) = struct.unpack(">i", head)
    body = b""
    while len(body) < length:
        body += s.recv(length - len(body))

time.sleep(2)
before_rss, before_fds = rss_kib(), fds()
held = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(request)
    read_answer(s)
    held.append(s)
time.sleep(3)
after_rss, after_fds = rss_kib(), fds()
per_conn = (after_rss - before_rss) * 1024 / n
print(f"idle connections: {n} on 2 shards ({binary})")
print(f"  RSS {before_rss} KiB -> {after_rss} KiB: {per_conn / 1024:.1f} KiB per connection")
print(f"  descriptors {before_fds} -> {after_fds}: {(after_fds - before_fds) / n:.2f} per connection")
for s in held:
    s.close()
EOF
