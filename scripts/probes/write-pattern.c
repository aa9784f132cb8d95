// Page-cache write cost by write pattern (kernel-notes/write-path.md, "folio size").
// Writes MIB MiB into a new FILE in writes of WRITE_BYTES back to back; with AHEAD_KIB > 0
// first writes zeros ahead in aligned AHEAD_KIB steps (a page-cache preallocation), so the
// data lands in folios the zero writes created. Prints the writing thread's CPU per GiB.
//
//   cc -O2 -o /tmp/write-pattern scripts/probes/write-pattern.c
//   # inside the full memory cgroup (scripts/bench-lib.sh memcg_enter), pinned, e.g.:
//   taskset -c 0 /tmp/write-pattern DIR/f1 3072 1048576 0    # the floor's pattern
//   taskset -c 0 /tmp/write-pattern DIR/f2 3072 1000000 0    # the node's, 1 MB batches
//   taskset -c 0 /tmp/write-pattern DIR/f3 3072 1000000 1024 # zeros ahead, 1 MiB steps
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s FILE MIB WRITE_BYTES AHEAD_KIB\n", argv[0]);
        return 2;
    }
    long total = atol(argv[2]) << 20, w = atol(argv[3]), ahead = atol(argv[4]) << 10;
    if (w <= 0 || w > (4 << 20) || ahead < 0 || ahead > (4 << 20)) {
        fprintf(stderr, "WRITE_BYTES and AHEAD_KIB*1024 must be in 1..4 MiB (AHEAD 0 = off)\n");
        return 2;
    }
    char *buf = aligned_alloc(4096, 4 << 20), *zero = aligned_alloc(4096, 4 << 20);
    memset(buf, 1, 4 << 20);
    memset(zero, 0, 4 << 20);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    long pos = 0, filled = 0;
    double start = thread_cpu();
    while (pos < total) {
        while (ahead && pos + w > filled) {
            if (pwrite(fd, zero, ahead, filled) != ahead) {
                perror("pwrite zeros");
                return 1;
            }
            filled += ahead;
        }
        if (pwrite(fd, buf, w, pos) != w) {
            perror("pwrite");
            return 1;
        }
        pos += w;
    }
    double cpu = thread_cpu() - start;
    fsync(fd);
    printf("write %ld B ahead %ld KiB: %.3f CPU-s/GiB\n", w, ahead >> 10, cpu / (total / 1073741824.0));
    return 0;
}
