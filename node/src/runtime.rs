//! Building glommio executors with every option spelled out (STYLE 10: no unread defaults).

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use std::time::Duration;

/// Registered I/O memory per executor. glommio's default is 10 MiB, registered with
/// io_uring and counted against RLIMIT_MEMLOCK; it backs only `DmaFile` buffers. The log uses
/// page-cache (`BufferedFile`) I/O, whose buffers are ordinary heap memory, so 1 MiB is
/// plenty and lets the node start under a default 8 MiB memlock limit.
pub const IO_MEMORY_BYTES: usize = 1 << 20;

/// Submission queue depth per ring: bounds I/O requests one shard has in the kernel at once.
pub const RING_DEPTH: usize = 256;

/// How long a task queue may run before it yields to others; low enough that a
/// background queue (retention, recovery) cannot hold requests back for long.
pub const PREEMPT_TIMER: Duration = Duration::from_millis(10);

/// A builder for one shard's executor, pinned to `cpu` when given.
pub fn executor_builder(name: &str, cpu: Option<usize>) -> LocalExecutorBuilder {
    let placement = match cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(IO_MEMORY_BYTES)
        .ring_depth(RING_DEPTH)
        .preempt_timer(PREEMPT_TIMER)
}

/// An unpinned executor for tests and tools that run on the calling thread.
pub fn test_executor() -> LocalExecutor {
    raise_memlock_limit();
    executor_builder("sluice-test", None).make().expect("glommio executor (is io_uring available?)")
}

/// Best effort: lift RLIMIT_MEMLOCK's soft limit to the hard limit, and as root (or with
/// CAP_SYS_RESOURCE) raise both to at least 64 MiB. glommio refuses to start below 512 KiB;
/// io_uring on kernels before 5.12 also charges ring memory to this limit.
pub fn raise_memlock_limit() {
    const WANT_BYTES: libc::rlim_t = 64 << 20;
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 || lim.rlim_cur >= WANT_BYTES {
            return;
        }
        let raised = libc::rlimit { rlim_cur: WANT_BYTES, rlim_max: lim.rlim_max.max(WANT_BYTES) };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) != 0 {
            let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &soft);
        }
    }
}

/// Wall-clock milliseconds since the epoch: the time base of Kafka timestamps, segment
/// rolling and retention. Callers pass it into the log, so tests can use their own clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
