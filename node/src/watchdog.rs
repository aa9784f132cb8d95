//! The executor watchdog: a work-around for io_uring waits that sleep through a completion.
//!
//! On the development VM (kernel 6.18, glommio-ng 0.12) a shard's executor sometimes parks
//! in `io_uring_enter` while a request it is waiting for has been processed but its
//! completion is never posted; nothing moves until the thread gets a signal (see
//! `kernel-notes/write-path.md`, "an executor that sleeps through a completion"). It was seen
//! first under CPU contention, then in about one node start in twenty while the start-up
//! creates the internal topics' 100 partitions: the node never printed its ready line and
//! ignored SIGTERM, and a SIGSTOP + SIGCONT let it finish at once.
//!
//! So every shard runs a beat task (a 20 ms timer bumping a counter) and one watchdog thread
//! checks the counters every 50 ms: a shard whose counter has not moved in that time is sent
//! a no-op signal, which makes the wait return to user space, where the kernel runs the
//! pending completion work. A shard that was merely busy loses nothing (the handler does
//! nothing; `SA_RESTART` restarts plain syscalls; glommio treats an interrupted
//! `io_uring_enter` as a spurious wake-up). Kicks are counted per shard
//! (`sluice_executor_kicks_total`); the first kick of each shard is logged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How often a shard's beat task bumps its counter.
pub const BEAT_INTERVAL: Duration = Duration::from_millis(20);
/// How often the watchdog looks; a shard with no beat in this time is kicked.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// The no-op signal. The node blocks SIGINT/SIGTERM in every thread and waits for them on
/// one; SIGUSR2 is otherwise unused by the node, glommio and the Rust runtime.
const KICK_SIGNAL: libc::c_int = libc::SIGUSR2;

/// One shard's liveness: its beat counter, its thread while it runs, kicks sent to it.
#[derive(Default)]
pub struct Beat {
    count: AtomicU64,
    /// The shard's thread, registered at its start and cleared before it exits. The watchdog
    /// holds this lock while it signals, so it never signals a thread that has gone.
    thread: Mutex<Option<libc::pthread_t>>,
    kicks: AtomicU64,
}

static BEATS: OnceLock<Vec<Arc<Beat>>> = OnceLock::new();

extern "C" fn no_op(_: libc::c_int) {}

/// Installs the signal handler and starts the watchdog thread for `shards` shards. Call once,
/// before the shards start; later calls do nothing.
pub fn start(shards: usize, stop: Arc<AtomicBool>) -> Result<(), String> {
    if BEATS.get().is_some() {
        return Ok(());
    }
    // SAFETY: installs a handler that does nothing (async-signal-safe), for a signal the
    // process does not otherwise use; the sigaction struct is fully initialised.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = no_op as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(KICK_SIGNAL, &action, std::ptr::null_mut()) != 0 {
            return Err(format!("installing the watchdog's signal handler: {}", std::io::Error::last_os_error()));
        }
    }
    let beats: Vec<Arc<Beat>> = (0..shards).map(|_| Arc::new(Beat::default())).collect();
    let _ = BEATS.set(beats.clone());
    std::thread::Builder::new()
        .name("sluice-watchdog".into())
        .spawn(move || watch(&beats, &stop))
        .map_err(|e| format!("starting the watchdog thread: {e}"))?;
    Ok(())
}

fn watch(beats: &[Arc<Beat>], stop: &AtomicBool) {
    let mut last: Vec<u64> = beats.iter().map(|b| b.count.load(Ordering::Relaxed)).collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(CHECK_INTERVAL);
        for (id, beat) in beats.iter().enumerate() {
            let now = beat.count.load(Ordering::Relaxed);
            if now != last[id] {
                last[id] = now;
                continue;
            }
            let thread = beat.thread.lock().unwrap_or_else(|p| p.into_inner());
            let Some(thread) = *thread else { continue };
            // SAFETY: the thread is registered, so alive: it clears its registration under
            // this lock before it exits.
            unsafe { libc::pthread_kill(thread, KICK_SIGNAL) };
            if beat.kicks.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!(
                    "sluice: shard {id} made no progress for {CHECK_INTERVAL:?} (stalled or busy): sent it a \
                     wake-up signal (counted in sluice_executor_kicks_total; see kernel-notes/write-path.md)"
                );
            }
        }
    }
}

/// Registers the calling thread as shard `id`'s (call first thing on the shard's thread);
/// the registration ends when the guard is dropped, which must happen on that thread before
/// it exits. Without [`start`] (tests, tools) this does nothing.
pub fn register(id: usize) -> Registration {
    let beat = BEATS.get().and_then(|b| b.get(id)).cloned();
    if let Some(b) = &beat {
        // SAFETY: pthread_self has no preconditions.
        *b.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(unsafe { libc::pthread_self() });
    }
    Registration { beat }
}

/// Ends a shard thread's registration when dropped.
pub struct Registration {
    beat: Option<Arc<Beat>>,
}

impl Registration {
    /// The beat task: bumps the counter every [`BEAT_INTERVAL`] for as long as the executor
    /// runs it (spawn it detached on the shard's executor).
    pub fn beat_task(&self) -> impl std::future::Future<Output = ()> + 'static {
        let beat = self.beat.clone();
        async move {
            let Some(beat) = beat else { return };
            loop {
                beat.count.fetch_add(1, Ordering::Relaxed);
                glommio::timer::sleep(BEAT_INTERVAL).await;
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(b) = &self.beat {
            *b.thread.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// Kicks sent to shard `id` so far.
pub fn kicks(id: usize) -> u64 {
    BEATS.get().and_then(|b| b.get(id)).map_or(0, |b| b.kicks.load(Ordering::Relaxed))
}
