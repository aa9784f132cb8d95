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

/// A sleep until `when` that keeps one timer registered however often it is polled.
///
/// Why: glommio-ng 0.12's `Timer` registers a new entry in the reactor's timer table on
/// every poll while pending and forgets the previous one, which stays until its expiry. A
/// timeout raced against other work (`future::or(work, sleep(30 s))`) is polled each time
/// the work wakes the task, so under load the table grows by one entry per wake-up for the
/// whole timeout, and the reactor scans the table on every turn to find the next expiry:
/// found with `perf` as 49–77 % of a loaded node's CPU in `Reactor::process_timers`, and
/// acks=all produce falling from ~300k to ~50k msg/s within 15 s. This polls the inner
/// timer only when it must register (the first poll, or a poll from another task's waker).
pub struct Deadline {
    when: std::time::Instant,
    timer: Option<(glommio::timer::Timer, std::task::Waker)>,
}

impl Deadline {
    pub fn after(wait: Duration) -> Deadline {
        Deadline { when: std::time::Instant::now() + wait, timer: None }
    }
}

impl std::future::Future for Deadline {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let now = std::time::Instant::now();
        if now >= self.when {
            self.timer = None; // deregisters it
            return std::task::Poll::Ready(());
        }
        let registered = self.timer.as_ref().is_some_and(|(_, waker)| waker.will_wake(cx.waker()));
        if !registered {
            // Dropping the previous timer (if any) removes its entry; the new one wakes `cx`.
            let mut timer = glommio::timer::Timer::new(self.when - now);
            if std::pin::Pin::new(&mut timer).poll(cx).is_ready() {
                self.timer = None;
                return std::task::Poll::Ready(());
            }
            self.timer = Some((timer, cx.waker().clone()));
        }
        std::task::Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Instant;

    /// Raced against a future that wakes its task thousands of times, the deadline neither
    /// fires early nor late, and the racing future is what ends the race when it finishes first.
    #[test]
    fn deadline_survives_many_polls() {
        test_executor().run(async {
            let polls = Rc::new(Cell::new(0u64));
            let p = polls.clone();
            let busy = async move {
                loop {
                    p.set(p.get() + 1);
                    futures_lite::future::yield_now().await;
                }
            };
            let start = Instant::now();
            futures_lite::future::or(busy, Deadline::after(Duration::from_millis(100))).await;
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(100), "fired early: {took:?}");
            assert!(polls.get() > 1000, "the race was polled {} times", polls.get());

            let start = Instant::now();
            let done = futures_lite::future::or(
                async {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    true
                },
                async {
                    Deadline::after(Duration::from_secs(5)).await;
                    false
                },
            )
            .await;
            assert!(done && start.elapsed() < Duration::from_secs(5));
        });
    }
}
