# Helpers for measurement scripts on a shared machine (source it; bash).
#
# A run is only worth keeping if nothing else used the CPU meanwhile. `watch_start` starts
# a sampler (every 0.5 s) that adds up the CPU time of every user process that is not a
# descendant of this script (builds, test suites, other people's nodes; kernel threads such
# as writeback are left out) and the time the hypervisor gave the VM's CPUs to others
# (steal); `watch_stop` prints it as a share of one core over the run (0.00: nothing else
# ran). `quiet_wait` blocks until that share stays below QUIET_SHARE (default 0.05) for
# 3 s; `measured CMD` runs CMD after `quiet_wait` and repeats it if the run was not quiet.

QUIET_SHARE="${QUIET_SHARE:-0.05}"
_watch_pid=""
_watch_out=""

_watch_py='
import os, signal, sys, time
root, out = int(sys.argv[1]), sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
def sample():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))  # ppid, utime+stime
    return procs
def mine(procs):
    kids = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = set(), [root, os.getpid(), 2]  # 2: kthreadd, parent of kernel threads
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(kids.get(p, []))
    return out
def steal():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])
start = time.monotonic()
steal0 = steal()
first = sample()
seen = {pid: t for pid, (_, t) in first.items()}
others = 0
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
while not stop:
    time.sleep(0.5)
    procs = sample()
    me = mine(procs)
    for pid, (_, t) in procs.items():
        if pid not in me:
            others += t - seen.get(pid, 0)
        seen[pid] = t
wall = time.monotonic() - start
share = (others + steal() - steal0) / hz / max(wall, 1e-3)
with open(out, "w") as f:
    f.write(f"{share:.2f}\n")
'

watch_start() {
    _watch_out="$(mktemp)"
    nice -n 19 python3 -c "$_watch_py" "$$" "$_watch_out" &
    _watch_pid=$!
}

# Prints the other processes' CPU over the run as a share of one core.
watch_stop() {
    kill -TERM "$_watch_pid" 2>/dev/null || true
    # (in a command substitution the sampler is no child of ours: wait for its file)
    for _ in $(seq 100); do [ -s "$_watch_out" ] && break; sleep 0.05; done
    cat "$_watch_out"
    rm -f "$_watch_out"
}

# True if `share` (from watch_stop) is small enough for the run to count.
quiet_enough() {
    python3 -c "import sys; sys.exit(0 if float('$1') <= float('$QUIET_SHARE') else 1)"
}

# Waits until the rest of the machine has been quiet for 3 s.
quiet_wait() {
    local share waited=0
    while :; do
        watch_start
        sleep 3
        share="$(watch_stop)"
        quiet_enough "$share" && break
        [ "$waited" = 0 ] && echo "bench: waiting for the machine to be quiet (others use $share of a core)" >&2
        waited=1
        sleep 10
    done
}

# measured CMD...: waits for quiet, runs CMD and repeats it (up to 5 times) when something
# else used more than QUIET_SHARE of a core meanwhile. CMD leaves its results in files.
measured() {
    local try share
    for try in 1 2 3 4 5; do
        quiet_wait
        watch_start
        "$@"
        share="$(watch_stop)"
        quiet_enough "$share" && return 0
        echo "bench: other processes used $share of a core during the run; repeating it" >&2
    done
    echo "bench: the machine did not stay quiet; keeping the last run (others: $share of a core)" >&2
}

# A fresh release node for one measurement (NODE_BIN [target/release/sluice], pinned to
# NODE_CORE [0] with `--cores NODE_CORE`, data under DIR/data, emptied first unless
# NODE_KEEP_DATA=1, which restarts a node on the data an earlier one left):
#   node_start DIR [--set k=v ...]   sets $node (pid) and $kafka (address)
#   node_stop                        stops it (safe to call twice; use it in an EXIT trap)
node=""
kafka=""
node_start() {
    local dir="$1"
    shift
    node_stop
    mkdir -p "$dir"
    [ "${NODE_KEEP_DATA:-0}" = 1 ] || rm -rf "$dir/data"
    # --admin off unless the caller passes its own (the last one wins): the default,
    # 127.0.0.1:9644, would collide with a node already running.
    taskset -c "${NODE_CORE:-0}" "${NODE_BIN:-target/release/sluice}" --listen 127.0.0.1:0 --admin off \
        --data-dir "$dir/data" --cores "${NODE_CORE:-0}" "$@" >"$dir/node.log" 2>&1 &
    node=$!
    for _ in $(seq 100); do grep -q "sluice: ready" "$dir/node.log" && break; sleep 0.1; done
    kafka="$(grep -o 'kafka=[^ ]*' "$dir/node.log" | cut -d= -f2)"
    [ -n "$kafka" ] || { echo "bench: the node did not start:" >&2; cat "$dir/node.log" >&2; return 1; }
}
node_stop() {
    if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
    node=""
}

# need_binaries FILE...: stops the script unless every FILE is an executable (the release
# node and harness a measurement runs).
need_binaries() {
    local b
    for b in "$@"; do
        [ -x "$b" ] || { echo "bench: $b missing; build first: cargo build --release -p sluice-node -p sluice-bench" >&2; exit 1; }
    done
}

# memcg_enter [MIB]: moves this shell -- and so everything it starts from now on: floors,
# nodes, peers, load generators -- into one memory cgroup capped at MIB MiB (MEMCG_MIB,
# default 2048), then fills it with clean page cache from a file it keeps (MEMCG_FILL) and
# syncs. Why: this VM backs guest memory lazily and takes back memory that stays free for a
# few seconds, so a page-cache page taken from long-free memory costs about ten times a
# recycled one (fresh: ~0.35 GB/s at 98 % system CPU; recycled: ~5 GB/s). A long-running
# server's page cache is full and recycled; inside a full, capped cgroup every writer
# recycles too. Keep it full: delete nothing until the script ends (memcg_cleanup) and
# `sync` after each writer. cgroup v1's memory controller where mounted, else v2.
MEMCG_NAME="${MEMCG_NAME:-sluice-bench}"
memcg_dir=""
memcg_enter() {
    local mib="${1:-${MEMCG_MIB:-2048}}" fill="${MEMCG_FILL:-/var/tmp/sluice-bench-fill}"
    if [ -d /sys/fs/cgroup/memory ] && [ -e /sys/fs/cgroup/memory/cgroup.procs ]; then
        memcg_dir="/sys/fs/cgroup/memory/$MEMCG_NAME"
        mkdir -p "$memcg_dir"
        echo $((mib << 20)) >"$memcg_dir/memory.limit_in_bytes"
    elif [ -e /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        memcg_dir="/sys/fs/cgroup/$MEMCG_NAME"
        echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir -p "$memcg_dir"
        echo $((mib << 20)) >"$memcg_dir/memory.max"
    else
        echo "bench: no memory cgroup controller (v1 or v2) to measure in; run as root" >&2
        return 1
    fi
    echo $$ >"$memcg_dir/cgroup.procs"
    # Written from inside the cgroup, so its pages are charged here; 1.25 x the cap so the
    # cgroup ends full of the file's (clean, after sync) pages.
    dd if=/dev/zero of="$fill" bs=1M count=$((mib * 5 / 4)) status=none
    sync
    echo "bench: in memory cgroup $memcg_dir (cap $mib MiB, $(memcg_usage_mib) MiB used after filling from $fill)" >&2
}

# The cgroup's memory use, MiB.
memcg_usage_mib() {
    local f="$memcg_dir/memory.usage_in_bytes"
    [ -e "$f" ] || f="$memcg_dir/memory.current"
    echo $(($(cat "$f") >> 20))
}

# memcg_refill DIR...: deletes what a finished run wrote (the disk is finite: a 10 s produce
# writes ~10 GB) and at once tops the cgroup up again with the fill file's clean pages, then
# syncs -- so the next writer again meets a full cgroup of clean cache, and the fresh pages
# that the refill may take from the host are paid for here, not in a measurement.
memcg_refill() {
    rm -rf "$@"
    cat "${MEMCG_FILL:-/var/tmp/sluice-bench-fill}" >/dev/null
    sync
}

# Deletes what a run kept (the directories given) -- only at the end of a script.
memcg_cleanup() {
    rm -rf "$@"
}

# CPU seconds (user + system, all threads, io_uring workers too) process $1 has used so far.
proc_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
