// Loopback send cost by method (kernel-notes/fetch-path.md): sends a cached FILE over a
// loopback TCP connection to a reader thread on core 1 from core 0, and prints the sending
// thread's CPU per GiB. MODE: write (one hot CHUNK buffer, what the floor measures), pread
// (copy from the page cache, then write), sendfile, splice (file -> pipe of PIPE_KIB -> socket).
//
//   cc -O2 -pthread -o /tmp/loopback-send scripts/probes/loopback-send.c
//   dd if=/dev/urandom of=/var/tmp/sendfile bs=1M count=2048 && cat /var/tmp/sendfile >/dev/null
//   /tmp/loopback-send sendfile /var/tmp/sendfile 1024 0
//   /tmp/loopback-send splice /var/tmp/sendfile 256 256
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static int listener;
static long total;

static void *receive(void *unused) {
    (void)unused;
    pin(1);
    int c = accept(listener, 0, 0);
    char *b = malloc(1 << 20);
    for (long got = 0; got < total;) {
        ssize_t n = read(c, b, 1 << 20);
        if (n <= 0)
            break;
        got += n;
    }
    close(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s write|pread|sendfile|splice FILE CHUNK_KIB PIPE_KIB\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    int f = open(argv[2], O_RDONLY);
    long chunk = atol(argv[3]) << 10, pipe_size = atol(argv[4]) << 10;
    if (f < 0 || chunk <= 0) {
        fprintf(stderr, "need a readable FILE and CHUNK_KIB > 0\n");
        return 2;
    }
    total = lseek(f, 0, SEEK_END);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof a;
    if (bind(listener, (void *)&a, sizeof a) || listen(listener, 1) || getsockname(listener, (void *)&a, &len)) {
        perror("listen");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, 0, receive, 0);
    pin(0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    char *buf = malloc(chunk);
    memset(buf, 1, chunk);
    int p[2];
    if (pipe(p)) {
        perror("pipe");
        return 1;
    }
    if (pipe_size)
        fcntl(p[1], F_SETPIPE_SZ, pipe_size);
    double c0 = thread_cpu(), w0 = wall();
    off_t off = 0;
    for (long sent = 0; sent < total;) {
        long want = total - sent < chunk ? total - sent : chunk;
        ssize_t n;
        if (!strcmp(mode, "write")) {
            n = write(s, buf, want);
        } else if (!strcmp(mode, "pread")) {
            n = pread(f, buf, want, sent);
            n = n > 0 ? write(s, buf, n) : n;
        } else if (!strcmp(mode, "sendfile")) {
            n = sendfile(s, f, &off, want);
        } else {
            loff_t o = sent;
            ssize_t m = splice(f, &o, p[1], 0, want, SPLICE_F_MOVE);
            for (n = 0; m > 0 && n < m;) {
                ssize_t k = splice(p[0], 0, s, 0, m - n, SPLICE_F_MOVE);
                if (k <= 0) {
                    m = -1;
                    break;
                }
                n += k;
            }
            if (m <= 0)
                n = -1;
        }
        if (n <= 0) {
            perror(mode);
            return 1;
        }
        sent += n;
    }
    double cpu = thread_cpu() - c0, secs = wall() - w0;
    shutdown(s, SHUT_WR);
    pthread_join(t, 0);
    printf("%-8s chunk %4ld KiB pipe %4ld KiB: %.3f CPU-s/GiB, %.0f MB/s\n", mode, chunk >> 10, pipe_size >> 10,
           cpu / (total / 1073741824.0), total / secs / 1e6);
    return 0;
}
