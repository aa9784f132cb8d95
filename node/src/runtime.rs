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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Instant;

    /// glommio-ng 0.12's `Timer` registered a new reactor entry on every poll while pending
    /// and forgot the previous one (patched in node/vendor/glommio-ng): a timeout that loses
    /// a race after thousands of wake-ups left thousands of entries that woke the task again
    /// at the timeout's deadline, long after it had moved on, and the reactor scanned them all
    /// on every turn (49-77 % of a loaded node's CPU). The task must not be woken by them.
    #[test]
    fn a_timeout_that_lost_a_race_wakes_nobody_later() {
        test_executor().run(async {
            let wakeups = Rc::new(Cell::new(0u64));
            let w = wakeups.clone();
            let busy = async move {
                while w.get() < 5000 {
                    w.set(w.get() + 1);
                    futures_lite::future::yield_now().await;
                }
            };
            let start = Instant::now();
            futures_lite::future::or(busy, glommio::timer::sleep(Duration::from_millis(100))).await;
            assert_eq!(wakeups.get(), 5000, "the busy side ends the race");
            assert!(start.elapsed() < Duration::from_millis(100), "the race took {:?}", start.elapsed());
            // Park until 300 ms, woken only by a timer of our own; note every poll before it is due.
            let mut own = glommio::timer::Timer::new(Duration::from_millis(300) - start.elapsed());
            let due = start + Duration::from_millis(290);
            let early_polls = Cell::new(0u32);
            std::future::poll_fn(|cx| {
                if Instant::now() < due {
                    early_polls.set(early_polls.get() + 1);
                }
                std::future::Future::poll(std::pin::Pin::new(&mut own), cx)
            })
            .await;
            assert_eq!(early_polls.get(), 1, "woken before its own timer was due (stale timer entries)");
        });
    }

    /// A send parked on a full bounded channel must fail when the receiver goes; glommio-ng
    /// 0.12 woke it and parked it again, for ever (patched in node/vendor/glommio-ng). A
    /// connection whose writer ended (its client gone) while the reader waited for room never
    /// ended: it kept its socket and the answers queued in the channel, with a duplicated
    /// descriptor per partition each (`tests/e2e_slow_consumer.rs`).
    #[test]
    fn a_send_parked_on_a_full_channel_fails_when_the_receiver_goes() {
        test_executor().run(async {
            let (tx, rx) = glommio::channels::local_channel::new_bounded::<u32>(1);
            tx.try_send(1).unwrap();
            let mut send = Box::pin(tx.send(2));
            assert!(futures_lite::future::poll_once(&mut send).await.is_none(), "parked: the channel is full");
            drop(rx);
            let after = futures_lite::future::poll_once(&mut send).await;
            assert!(matches!(after, Some(Err(_))), "the parked send still waits for a receiver that is gone");
        });
    }

    /// An open whose future is dropped while the operation is in the kernel completes with a
    /// descriptor nobody reads; glommio-ng 0.12 leaked it (patched: the reactor closes it).
    #[test]
    fn an_abandoned_open_leaks_no_descriptor() {
        fn open_fds() -> usize {
            std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
        }
        let dir = std::env::temp_dir().join(format!("sluice-abandoned-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"x").unwrap();
        test_executor().run(async {
            // Settle the executor's own descriptors first.
            glommio::timer::sleep(Duration::from_millis(10)).await;
            let before = open_fds();
            let mut abandoned = 0;
            for _ in 0..50 {
                let mut open = Box::pin(glommio::io::BufferedFile::open(&path));
                if futures_lite::future::poll_once(&mut open).await.is_none() {
                    // Parked, so the reactor submits the open; then the future is dropped.
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    abandoned += 1;
                }
                drop(open);
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
            assert!(abandoned > 0, "no open was still pending when dropped: the test proved nothing");
            assert_eq!(open_fds(), before, "{abandoned} opens abandoned");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
