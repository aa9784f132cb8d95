//! File descriptors (issue #14, Build 2): the node's `RLIMIT_NOFILE`, what is open, and
//! how many connections that leaves room for.
//!
//! What holds descriptors: one per segment (its `.log`; the index files are opened only to
//! be written, see `log::segment::IndexFiles`), one per connection, a few per shard (rings,
//! eventfds, listeners), and short-lived ones — a fetch range crossing shards (`dup`), a
//! roll, a checkpoint or an index write, a cleaning, a new topic's partitions.
//!
//! The policy:
//! - At start the soft limit is raised to the hard one, as the JVM does for Kafka
//!   (`-XX:+MaxFDLimit`, on by default): a distribution's soft 1024 under a hard 524288 is a
//!   historical default for `select(2)` users, which the node is not.
//! - Connections may use what the limit leaves after the files, minus a reserve for the
//!   short-lived ones ([`reserve`]), so the node never spends its last descriptors on
//!   sockets: an established client's fetch, a roll and a checkpoint still get theirs. The
//!   room acts as an implicit `max.connections` (`connection_quotas`): at it, a shard keeps
//!   the connection it accepted waiting unread and accepts nothing more — clients wait in the
//!   listen backlog instead of being accepted and dropped, and nothing floods the log.
//! - A new topic (or more partitions) whose files would eat into the reserve is refused
//!   before anything is created (KAFKA_STORAGE_ERROR, naming the limit).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Descriptors kept back from connections, at least.
pub const RESERVE_MIN: usize = 32;

/// ... or this fraction of the limit (1/8), if larger.
const RESERVE_DIVISOR: usize = 8;

/// Below this much room for connections the node warns at start.
pub const LOW_ROOM_WARNING: usize = 1024;

/// How long a count of the open descriptors is trusted far from the limit; near it (within
/// the reserve) it is recounted at most this often instead.
const RECOUNT_FAR: Duration = Duration::from_secs(1);
const RECOUNT_NEAR: Duration = Duration::from_millis(20);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns (soft, hard) in force after.
pub fn raise_nofile_limit() -> (u64, u64) {
    let (soft, hard) = nofile_limit();
    if soft < hard {
        let raised = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return (hard, hard);
        }
    }
    (soft, hard)
}

/// The soft and hard `RLIMIT_NOFILE`.
pub fn nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (u64::MAX, u64::MAX);
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// The soft limit as a count (an unlimited one is effectively the kernel's `nr_open`).
fn soft_limit() -> usize {
    usize::try_from(nofile_limit().0).unwrap_or(usize::MAX)
}

/// Descriptors kept back from connections under `limit`.
pub fn reserve(limit: usize) -> usize {
    RESERVE_MIN.max(limit / RESERVE_DIVISOR)
}

/// Descriptors this process has open now (the entries of `/proc/self/fd`, less the one the
/// listing itself holds). `None` if it cannot be read (no procfs): the budget then does not
/// limit connections beyond `max.connections`.
pub fn open_count() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

/// The descriptors open now against the soft limit and its reserve.
#[derive(Debug, Clone, Copy)]
pub struct Headroom {
    pub open: usize,
    pub limit: usize,
    pub reserve: usize,
}

impl Headroom {
    /// Counted now; `None` if the open descriptors cannot be counted (no procfs).
    pub fn now() -> Option<Headroom> {
        let limit = soft_limit();
        Some(Headroom { open: open_count()?, limit, reserve: reserve(limit) })
    }

    /// Descriptors that may still be opened without touching the reserve.
    pub fn free(&self) -> usize {
        self.limit.saturating_sub(self.reserve).saturating_sub(self.open)
    }
}

/// Room for `more` descriptors beyond those open now, keeping the reserve: `Err` names the
/// limit for the client (a CreateTopics that would leave the node without its reserve).
pub fn room_for(more: usize, what: &str) -> Result<(), String> {
    let Some(Headroom { open, limit, reserve }) = Headroom::now() else { return Ok(()) };
    if open.saturating_add(more).saturating_add(reserve) <= limit {
        return Ok(());
    }
    Err(format!(
        "{what} needs {more} file descriptors and the node has {open} open of its limit of {limit} \
         (RLIMIT_NOFILE; {reserve} are kept in reserve): raise the limit (`ulimit -n`, systemd LimitNOFILE=)"
    ))
}

/// How many connections the descriptor limit leaves room for; shared by the shards (one per
/// node, inside `ConnectionQuotas`).
#[derive(Debug)]
pub struct ConnectionRoom {
    limit: usize,
    reserve: usize,
    /// Descriptors open that are not held connections, as last counted, and when.
    others: Mutex<Option<(usize, Instant)>>,
}

impl ConnectionRoom {
    /// Under the limit in force now.
    pub fn new() -> ConnectionRoom {
        let limit = soft_limit();
        ConnectionRoom::with_limit(limit)
    }

    fn with_limit(limit: usize) -> ConnectionRoom {
        ConnectionRoom { limit, reserve: reserve(limit), others: Mutex::new(None) }
    }

    /// The most connections the node may hold, given that it holds `held` now. Counts the
    /// open descriptors (a directory listing) at most once a second far from the limit, and
    /// at most every 20 ms near it; in between, the last count stands.
    pub fn max_connections(&self, held: usize) -> usize {
        self.max_connections_with(held, Instant::now(), open_count)
    }

    fn max_connections_with(&self, held: usize, now: Instant, count: impl FnOnce() -> Option<usize>) -> usize {
        let mut others = self.others.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stale = match *others {
            None => true,
            Some((files, at)) => {
                let near = held.saturating_add(files).saturating_add(2 * self.reserve) >= self.limit;
                now.duration_since(at) >= if near { RECOUNT_NEAR } else { RECOUNT_FAR }
            }
        };
        if stale {
            match count() {
                // The count includes the held connections' sockets, and the one being decided
                // on (accepted, not yet held): counting it as a file errs on the safe side.
                Some(open) => *others = Some((open.saturating_sub(held), now)),
                None => return usize::MAX,
            }
        }
        let files = others.map_or(0, |(files, _)| files);
        self.limit.saturating_sub(self.reserve).saturating_sub(files)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Default for ConnectionRoom {
    fn default() -> ConnectionRoom {
        ConnectionRoom::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_from_connections_and_the_count_is_refreshed_near_the_limit() {
        let room = ConnectionRoom::with_limit(256);
        assert_eq!(room.reserve, 32);
        let t0 = Instant::now();
        // 117 open, none of them connections: 256 - 32 - 117 = 107 connections.
        assert_eq!(room.max_connections_with(0, t0, || Some(117)), 107);
        // Far from the limit the count is trusted for a second: no recount.
        assert_eq!(room.max_connections_with(10, t0 + Duration::from_millis(500), || panic!("recounted")), 107);
        // Near it (within twice the reserve), 20 ms is enough to recount; files grew by 20.
        let near = t0 + Duration::from_millis(530);
        assert_eq!(room.max_connections_with(90, near, || Some(117 + 20 + 90)), 87);
        // A count that cannot be taken does not limit connections.
        let fresh = ConnectionRoom::with_limit(256);
        assert_eq!(fresh.max_connections_with(0, t0, || None), usize::MAX);
    }

    #[test]
    fn a_low_limit_leaves_no_room_rather_than_underflowing() {
        let room = ConnectionRoom::with_limit(100);
        assert_eq!(room.max_connections_with(0, Instant::now(), || Some(117)), 0);
        assert_eq!(reserve(1 << 20), 1 << 17);
    }
}
