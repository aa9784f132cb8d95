#!/usr/bin/env python3
# What an fdatasync of a freshly written 1 GiB file costs the calling process at once and
# 36 s later (after the kernel's own writeback): bench/RESULTS.md (12). Usage: python3 scripts/probes/roll-flush.py [DIR]
import os, time, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
buf = b'x' * (1 << 20)
for delay in (0, 36):
    path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else '.', f'roll-flush-probe-{delay}')
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
    for _ in range(1024): os.write(fd, buf)
    time.sleep(delay)
    c0, t0 = cpu(), time.time()
    os.fdatasync(fd)
    print(f'delay {delay:2d} s: fdatasync of 1 GiB: {cpu()-c0:.3f} CPU-s, {time.time()-t0:.3f} s wall', flush=True)
    os.close(fd); os.unlink(path)
