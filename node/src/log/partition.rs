//! The partition log: an ordered list of segments in `<data-dir>/<topic>-<partition>/`.
//!
//! Ownership contract: a `PartitionLog` lives on the shard that owns the partition and is
//! only touched there (`Rc`, `RefCell`: `!Send` by construction). Every `RefCell` borrow is
//! taken in a synchronous section and dropped before any `.await`; async work runs on
//! handles (`Rc<SegmentFile>`, `IndexFiles`) cloned out of the state.
//!
//! Write path: `append` validates the batches, assigns offsets by patching `baseOffset` and
//! `partitionLeaderEpoch` (in a copy of each batch's first 16 bytes; the rest stays in the
//! request frame), and queues the pieces. Appends that arrive while a write is in flight join
//! one queued write, so many produce requests become one sequential, buffered (page-cache)
//! gathering write by the partition's single writer task (`pwritev` on the shard, or a copy
//! written through io_uring: `log.write.method`).
//! `append` returns once its bytes are in the page cache (what acks=1 waits for);
//! `sync_to` is the group commit acks=all waits for: any number of waiters share one
//! fdatasync that covers every append written before it started.
//!
//! Three watermarks, all offsets "one past the last": `next_offset` (assigned),
//! `written` (in the page cache: the log end readers see, and on a single node the high
//! watermark) and `synced` (on disk: the recovery point).
//!
//! Structural changes (roll, truncation, retention, log start moves) and sync rounds hold
//! `structure` (a one-permit semaphore), so they never interleave with each other. Appends
//! never take it unless they must roll.

mod clean;

pub use clean::{CleanStats, Cleanable};

use super::batch::{self, BatchError, BatchHeader, Check};
use super::checkpoint::{self, EpochEntry};
use super::config::{LogConfig, WriteMethod};
use super::error::LogError;
use super::producer::{self, ProducerStates, Verdict};
use super::segment::{self, IndexFiles, Piece, Segment, SegmentFile, SegmentState};
use crate::watch::OffsetWatch;
use bytes::Bytes;
use glommio::io::Directory;
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What the caller knows about the partition from the data directory's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenHint {
    /// From `recovery-point-offset-checkpoint`: everything below was fsynced.
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint`.
    pub log_start_offset: i64,
    /// The data directory holds a clean-shutdown marker: skip re-validation.
    pub clean_shutdown: bool,
}

/// The offsets assigned to one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub batches: usize,
    pub max_timestamp: i64,
    pub log_start_offset: i64,
}

/// A byte range of a segment file, aligned to whole batches: ready to be sent to a socket
/// without copying (the `Rc` is the lease that keeps the file open).
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Rc<SegmentFile>,
    pub position: u64,
    pub length: u64,
}

/// The answer to a read.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// `None` when there is nothing to return (at the log end, or the first batch did not fit
    /// and the caller did not ask for at least one).
    pub range: Option<FileRange>,
    /// Base offset of the first batch in the range (may be below the requested offset: a
    /// batch is never split, clients skip the records they did not ask for).
    pub first_offset: i64,
    /// Where the next read should start.
    pub next_offset: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// One queued write: a contiguous run of bytes for one segment file, kept as the pieces it
/// is made of (patched batch prefixes and slices of the produce requests' frames) so that
/// one gathering write moves them to the page cache without a copy in user space.
#[derive(Debug)]
struct QueuedWrite {
    file: Rc<SegmentFile>,
    segment_base: i64,
    position: u64,
    pieces: Vec<Piece>,
    len: usize,
    /// The log's next offset once these bytes are written.
    end_offset: i64,
}

#[derive(Debug)]
struct LogState {
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    next_offset: i64,
    queue: VecDeque<QueuedWrite>,
    writer_running: bool,
    sync_running: bool,
    flush_scheduled: bool,
    /// A roll or truncation is in progress: appends wait for `structure`.
    exclusive: bool,
    /// A failed fdatasync: what the kernel dropped is unknown; offline until reopened.
    offline: bool,
    /// A failed write (ENOSPC, EIO on write): appends are refused until `repair` has cut the
    /// log back to what reached the page cache (see `write_failed`).
    write_failed: bool,
    repairing: bool,
    repair_not_before_ms: i64,
    /// Rolled segments whose data and indexes the next sync round must fsync.
    closed_unsynced: Vec<(Rc<SegmentFile>, IndexFiles)>,
    /// Rolls whose sealed segments are yet to be flushed: (when, the new active segment's
    /// base), oldest first (`schedule_roll_flush`).
    roll_flushes: VecDeque<(i64, i64)>,
    /// A task is working through `roll_flushes`.
    roll_flusher_running: bool,
    /// A segment file was created or deleted since the directory was last fsynced.
    dir_dirty: bool,
    /// When the oldest append not yet covered by a sync was made (for `flush.ms`).
    first_unflushed_ms: Option<i64>,
    epochs: Vec<EpochEntry>,
    /// Idempotent producers' epochs and last batches (see `producer`).
    producers: ProducerStates,
    /// (segment base, position) up to which writeback was started (`write_behind`).
    behind: (i64, u64),
    /// The cleaner's checkpoint: offsets below were cleaned at least once (`clean`).
    cleaned_upto: i64,
    /// Truncations so far: a cleaning that began before one swaps no more groups in (its
    /// key map and copies were read from segments the truncation may have cut), as Kafka
    /// aborts cleaning around `truncateTo`. Groups swapped before it stay: cleanings stop at
    /// the high watermark, and truncations below it are the rare case (unclean election).
    truncations: u64,
    /// A cleaning is swapping the segments based in [.0, .1) for its own: retention and
    /// truncation leave them alone until it is done.
    swap_pending: Option<(i64, i64)>,
    /// Aborted transactions (with their segment's base) not yet in a `.txnindex`: the next
    /// sync round appends and syncs them.
    txn_pending: Vec<(i64, producer::AbortedTxn)>,
    /// Segments (by base) whose index files could not be written (a full disk): their files
    /// are removed (a start rebuilds missing indexes from the `.log`) and each sync round and
    /// `close` try to write them whole again.
    index_rewrites: Vec<i64>,
}

/// The log's part in replication (issue #15).
#[derive(Debug)]
enum Role {
    /// The only replica: the high watermark is the log end.
    Alone,
    /// Leads in `epoch`; every follower's log end by node id (-1: not fetched yet); those in
    /// `isr` hold the high watermark back.
    Leader {
        epoch: i32,
        isr: std::collections::BTreeSet<i32>,
        ends: BTreeMap<i32, i64>,
        /// Per follower: when it was last caught up (Kafka's `lastCaughtUpTimeMs`), and the
        /// log end and time of its previous fetch.
        seen: BTreeMap<i32, FollowerSeen>,
    },
    /// Follows: the high watermark is the leader's.
    Follower,
}

/// What a leader knows of a follower's progress, for `replica.lag.time.max.ms`.
#[derive(Debug, Clone, Copy)]
struct FollowerSeen {
    caught_up: std::time::Instant,
    last_fetch: std::time::Instant,
    /// The leader's log end when the follower last fetched.
    last_fetch_end: i64,
}

/// Who appends: the leader (assigns offsets, stamps its leader epoch) or a replica (keeps
/// what the leader wrote).
#[derive(Debug, Clone, Copy)]
enum Writer {
    Leader { epoch: i32, control_allowed: bool },
    Replica,
}

enum Enqueue {
    /// Queued: the offsets, whether the leader epoch changed, whether `flush.messages` was crossed.
    Done(AppendInfo, bool, bool),
    /// A producer's retry of a batch already in the log: its original offsets.
    Duplicate(AppendInfo),
    /// The active segment must be sealed: roll to a new one at the log end, or at this
    /// offset (a replicated append's first) when it lies past the log end.
    NeedRoll(i64),
    Busy,
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    /// Replaced whole when the topic's or the broker's settings change (`set_config`).
    config: RefCell<Rc<LogConfig>>,
    state: RefCell<LogState>,
    written: OffsetWatch,
    /// The high watermark (see `high_watermark`); the log end while the log is `Role::Alone`.
    hw: OffsetWatch,
    role: RefCell<Role>,
    synced: OffsetWatch,
    sync_rounds: OffsetWatch,
    structure: Semaphore,
    /// Held by a cleaning for its whole run; `close` waits for it.
    cleaner: Semaphore,
    /// One write of the cleaner checkpoint at a time: a cleaning's and a truncation's share
    /// its temp file (`clean::persist_cleaned_upto`).
    cleaner_checkpoint: Semaphore,
    /// One write of `leader-epoch-checkpoint` at a time: appends, truncations and log start
    /// moves write it, not all under `structure` (`persist_leader_epochs`).
    epoch_checkpoint: Semaphore,

    /// Set by `close` / `stop_cleaning`: a cleaning under way stops at its next step.
    clean_abort: Cell<bool>,
    /// Told of log start moves the segments alone would not restore (`on_log_start_moved`).
    log_start_listener: RefCell<Option<LogStartListener>>,
}

/// What `on_log_start_moved` was given (a wrapper: closures have no `Debug`).
struct LogStartListener(Box<dyn Fn(i64)>);

impl std::fmt::Debug for LogStartListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStartListener")
    }
}

fn as_watch(offset: i64) -> u64 {
    offset.max(0) as u64
}

impl PartitionLog {
    /// Opens (or creates) the partition directory and recovers it: segments that may hold
    /// data at or past the recovery point are re-validated batch by batch, a torn or corrupt
    /// tail is cut (and any later segment deleted), damaged indexes are rebuilt. With a
    /// clean-shutdown marker only the active segment's tail headers are walked.
    pub async fn open(dir: &Path, config: LogConfig, hint: OpenHint) -> Result<Rc<PartitionLog>, LogError> {
        config.validate().map_err(LogError::Corrupt)?;
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        // glommio opens directories with openat(-1, path): a relative path fails with EBADF.
        let dir = &std::path::absolute(dir).map_err(|e| LogError::io(format!("resolving {}", dir.display()), e))?;
        clean::finish_interrupted(dir)?;
        let bases = discover_segments(dir)?;
        let mut segments = BTreeMap::new();
        let mut recovered_any = false;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let (mut seg, sane) = Segment::open(dir, base, &config).await?;
            let holds_unflushed = next_base.is_none_or(|next| next > hint.recovery_point);
            if !sane || (!hint.clean_shutdown && holds_unflushed) {
                let outcome = seg.recover(&config).await?;
                recovered_any = true;
                if outcome.truncated_bytes > 0 {
                    // Nothing after a corrupt batch can be trusted to follow it.
                    for &later in &bases[i + 1..] {
                        Segment::delete_files(dir, later)?;
                    }
                    segments.insert(base, seg);
                    break;
                }
            } else if next_base.is_none() {
                seg.load_tail(&config).await?;
            } else {
                seg.state.next_offset = next_base.unwrap_or(base);
            }
            segments.insert(base, seg);
        }
        // A roll creates the next segment while writes queued for the previous one may still
        // be in flight: a crash can leave empty last segments above a hole no data fills.
        // Their base would become the log end, past offsets that were never written.
        while segments.len() > 1 {
            let mut newest = segments.iter().rev();
            let (&last_base, last) = newest.next().expect("two segments");
            let (_, prev) = newest.next().expect("two segments");
            if last.state.size > 0 || prev.state.next_offset >= last_base {
                break;
            }
            segments.remove(&last_base);
            Segment::delete_files(dir, last_base)?;
            recovered_any = true;
        }
        if segments.is_empty() {
            let base = hint.log_start_offset.max(0);
            segments.insert(base, Segment::create(dir, base, &config).await?);
        }
        let first_base = *segments.keys().next().expect("at least one segment");
        let active = segments.values_mut().next_back().expect("at least one segment");
        let next_offset = active.state.next_offset;
        if recovered_any {
            // What recovery kept is now the durable truth: make it so before trusting it.
            active.log.file.fdatasync().await?;
        }
        let log_start_offset = hint.log_start_offset.max(first_base).min(next_offset);
        let mut epochs: Vec<EpochEntry> =
            checkpoint::read_leader_epochs(dir)?.into_iter().filter(|e| e.start_offset <= next_offset).collect();
        // A crash between a log start move and the checkpoint's rewrite leaves older entries.
        truncate_epochs_from_start(&mut epochs, log_start_offset);
        let producers = load_producers(dir, &segments, log_start_offset, next_offset).await?;
        let directory = Directory::open(dir).await?;
        directory.sync().await?;
        directory.close().await?;
        Ok(Rc::new(PartitionLog {
            dir: dir.to_path_buf(),
            config: RefCell::new(Rc::new(config)),
            state: RefCell::new(LogState {
                segments,
                log_start_offset,
                next_offset,
                queue: VecDeque::new(),
                writer_running: false,
                sync_running: false,
                flush_scheduled: false,
                exclusive: false,
                offline: false,
                write_failed: false,
                repairing: false,
                repair_not_before_ms: 0,
                closed_unsynced: Vec::new(),
                roll_flushes: VecDeque::new(),
                roll_flusher_running: false,
                dir_dirty: false,
                first_unflushed_ms: None,
                epochs,
                producers,
                behind: (-1, 0),
                cleaned_upto: clean::read_checkpoint(dir),
                truncations: 0,
                swap_pending: None,
                txn_pending: Vec::new(),
                index_rewrites: Vec::new(),
            }),
            written: OffsetWatch::new(as_watch(next_offset)),
            hw: OffsetWatch::new(as_watch(next_offset)),
            role: RefCell::new(Role::Alone),
            synced: OffsetWatch::new(as_watch(next_offset)),
            sync_rounds: OffsetWatch::new(0),
            structure: Semaphore::new(1),
            cleaner: Semaphore::new(1),
            cleaner_checkpoint: Semaphore::new(1),
            epoch_checkpoint: Semaphore::new(1),
            clean_abort: Cell::new(false),
            log_start_listener: RefCell::new(None),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings in force (a snapshot: a change replaces them, it never edits these).
    pub fn config(&self) -> Rc<LogConfig> {
        self.config.borrow().clone()
    }

    /// New settings, in force from the next operation on: appends check `max.message.bytes`,
    /// `segment.bytes`, `segment.ms` and `index.interval.bytes` against them, `flush.*` and
    /// retention use them at their next check, segments created from now on size their
    /// indexes by `segment.index.bytes`. Refused (nothing changes) if they do not validate.
    pub fn set_config(&self, config: LogConfig) -> Result<(), String> {
        config.validate()?;
        *self.config.borrow_mut() = Rc::new(config);
        Ok(())
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }

    /// The offset the next append will get (includes appends still being written).
    pub fn next_offset(&self) -> i64 {
        self.state.borrow().next_offset
    }

    /// The log end offset readers see: every offset below it is in the page cache.
    pub fn log_end_offset(&self) -> i64 {
        self.written.get() as i64
    }

    /// Offsets below the high watermark are on every replica (in-sync, issue #15): the most
    /// a consumer may read. With one replica (`Role::Alone`) it is the log end.
    pub fn high_watermark(&self) -> i64 {
        (self.hw.get() as i64).min(self.log_end_offset())
    }

    /// The high watermark's watch: consumers' long polls and acks=all of a replicated
    /// partition wait on it.
    pub fn high_watermark_watch(&self) -> &OffsetWatch {
        &self.hw
    }

    /// The log end's watch (what replicas wait on: they copy up to the log end).
    pub fn log_end_watch(&self) -> &OffsetWatch {
        &self.written
    }

    /// This log leads its partition in leader epoch `epoch` (appends are stamped with it)
    /// with the other replicas `followers`, of which `isr` are in sync: from now on the high
    /// watermark is the lowest log end of the leader and the in-sync followers (each
    /// follower's is the offset it last fetched from: `follower_fetched`). It starts where it
    /// is: after a leader's restart, its log end (Kafka restores it from
    /// `replication-offset-checkpoint`, so a tail no follower had shows later there).
    pub fn lead(&self, epoch: i32, followers: &[i32], isr: &[i32]) {
        let mut role = self.role.borrow_mut();
        let (known, known_seen) = match &*role {
            Role::Leader { ends, seen, .. } => (ends.clone(), seen.clone()),
            _ => (BTreeMap::new(), BTreeMap::new()),
        };
        let ends = followers.iter().map(|&f| (f, known.get(&f).copied().unwrap_or(-1))).collect();
        // A follower new to this leadership gets a whole lag window from now, as in Kafka.
        let now = std::time::Instant::now();
        let fresh = FollowerSeen { caught_up: now, last_fetch: now, last_fetch_end: -1 };
        let seen = followers.iter().map(|&f| (f, known_seen.get(&f).copied().unwrap_or(fresh))).collect();
        let isr = isr.iter().copied().filter(|r| followers.contains(r)).collect();
        *role = Role::Leader { epoch, isr, ends, seen };
        drop(role);
        self.recompute_high_watermark();
    }

    /// The leader epoch appends are stamped with (0 when not leading a cluster partition).
    pub fn leader_epoch(&self) -> i32 {
        match &*self.role.borrow() {
            Role::Leader { epoch, .. } => *epoch,
            _ => 0,
        }
    }

    /// Replicas in sync, this one included (1 when alone).
    pub fn in_sync_replicas(&self) -> usize {
        match &*self.role.borrow() {
            Role::Leader { isr, .. } => 1 + isr.len(),
            _ => 1,
        }
    }

    /// A follower not in sync that has caught up to the high watermark: the leader asks the
    /// controller to add it to the in-sync replicas (Kafka's ISR expansion).
    pub fn caught_up_outside_isr(&self, follower: i32) -> bool {
        let hw = self.high_watermark();
        match &*self.role.borrow() {
            Role::Leader { isr, ends, .. } => !isr.contains(&follower) && ends.get(&follower).is_some_and(|&e| e >= hw),
            _ => false,
        }
    }

    /// This log is its partition's only replica again: the high watermark is the log end.
    pub fn alone(&self) {
        *self.role.borrow_mut() = Role::Alone;
        self.recompute_high_watermark();
    }

    /// This log follows a leader: its high watermark is what the leader says
    /// (`follow_high_watermark`), not its own log end.
    pub fn follow(&self) {
        *self.role.borrow_mut() = Role::Follower;
    }

    /// Whether this log leads a replicated partition (acks=all waits for the in-sync
    /// followers).
    pub fn is_replicated_leader(&self) -> bool {
        matches!(&*self.role.borrow(), Role::Leader { ends, .. } if !ends.is_empty())
    }

    /// Kafka's acks=all on a replicated leader: waits until every in-sync replica has the
    /// log below `end` (the high watermark reached it), for at most `timeout`. Some(true):
    /// they have it (at once, unless this log leads a replicated partition); Some(false):
    /// this log stopped leading first; None: the time ran out.
    pub async fn until_replicated(&self, end: i64, timeout: std::time::Duration) -> Option<bool> {
        if !self.is_replicated_leader() {
            return Some(true);
        }
        let replicated = self.hw.wait_for(end.max(0) as u64);
        futures_lite::future::or(async { Some(replicated.await.is_ok()) }, async {
            glommio::timer::sleep(timeout).await;
            None
        })
        .await
    }

    /// A follower fetched from `offset`: it holds every offset below. The high watermark
    /// moves up to the lowest log end of the in-sync replicas.
    pub fn follower_fetched(&self, follower: i32, offset: i64) {
        let log_end = self.log_end_offset();
        if let Role::Leader { ends, seen, .. } = &mut *self.role.borrow_mut() {
            if let Some(end) = ends.get_mut(&follower) {
                *end = offset;
            }
            // Kafka's rule: caught up now if it fetched from the log end; caught up as of its
            // previous fetch if it now fetches from where the log ended then.
            if let Some(s) = seen.get_mut(&follower) {
                let now = std::time::Instant::now();
                if offset >= log_end {
                    s.caught_up = now;
                } else if offset >= s.last_fetch_end {
                    s.caught_up = s.caught_up.max(s.last_fetch);
                }
                s.last_fetch = now;
                s.last_fetch_end = log_end;
            }
        }
        self.recompute_high_watermark();
    }

    /// In-sync followers not caught up for longer than `max_lag` (Kafka's
    /// `replica.lag.time.max.ms`): the leader asks the controller to drop them from the ISR.
    pub fn lagging_in_sync_followers(&self, max_lag: std::time::Duration) -> Vec<i32> {
        match &*self.role.borrow() {
            Role::Leader { isr, seen, .. } => {
                isr.iter().copied().filter(|f| seen.get(f).is_some_and(|s| s.caught_up.elapsed() > max_lag)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// A follower's high watermark: the leader's, as far as this log has it.
    pub fn follow_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.log_end_offset()).max(0);
        if hw as u64 > self.hw.get() {
            self.hw.advance(hw as u64);
        }
    }

    fn recompute_high_watermark(&self) {
        let end = self.log_end_offset();
        let hw = match &*self.role.borrow() {
            Role::Alone => end,
            Role::Leader { isr, ends, .. } => {
                isr.iter().map(|f| ends.get(f).copied().unwrap_or(-1)).fold(end, i64::min)
            }
            Role::Follower => return,
        };
        if hw >= 0 && hw as u64 > self.hw.get() {
            self.hw.advance(hw as u64);
        }
    }

    /// Every offset below this was fsynced: the value for `recovery-point-offset-checkpoint`.
    pub fn recovery_point(&self) -> i64 {
        self.synced.get() as i64
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`, what OffsetForLeaderEpoch answers: for
    /// the latest epoch, (it, the log end); for an older one, (the largest epoch at or below
    /// it, the start offset of the first epoch above it) — where a replica that last wrote in
    /// `requested` must cut its log; (-1, -1) for an epoch past the latest, or none known.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        let st = self.state.borrow();
        let Some(latest) = st.epochs.last() else { return (-1, -1) };
        if requested < 0 {
            return (-1, -1);
        }
        if requested == latest.epoch {
            return (latest.epoch, self.log_end_offset());
        }
        let Some(higher) = st.epochs.iter().position(|e| e.epoch > requested) else { return (-1, -1) };
        match higher.checked_sub(1) {
            Some(floor) => (st.epochs[floor].epoch, st.epochs[higher].start_offset),
            None => (requested, st.epochs[higher].start_offset),
        }
    }

    /// The end consumers see (the high watermark): their fetch long-polls wait on it.
    pub fn end_watch(&self) -> &OffsetWatch {
        &self.hw
    }

    /// How many fdatasync rounds have run (group commit makes this far smaller than the
    /// number of acks=all appends).
    pub fn sync_rounds(&self) -> u64 {
        self.sync_rounds.get()
    }

    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        self.state.borrow().epochs.clone()
    }

    /// Writes `leader-epoch-checkpoint` with the entries in force now. One write at a time
    /// (they share its temp file), each of the entries when it starts: the last one to run
    /// leaves the latest.
    async fn persist_leader_epochs(&self) -> Result<(), LogError> {
        let _one = self.epoch_checkpoint.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        let epochs = self.leader_epochs();
        checkpoint::write_leader_epochs(&self.dir, &epochs).await
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.values().map(|s| s.state.size).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.state.borrow().segments.keys().copied().collect()
    }

    /// Appends one or more record batches (a produce request's records for this partition).
    /// All are validated first; either all are appended, contiguously, or none is. Returns
    /// once the bytes are in the page cache. Copies `records`; [`append_shared`] does not.
    pub async fn append(
        self: &Rc<Self>,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(&Bytes::copy_from_slice(records), leader_epoch, now_ms, false).await
    }

    /// [`append`], keeping slices of `records` (the request frame) until they are written
    /// instead of copying them: the produce path.
    pub async fn append_shared(
        self: &Rc<Self>,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(records, leader_epoch, now_ms, false).await
    }

    /// Appends batches as another replica wrote them (a follower's append, Kafka's
    /// `appendAsFollower`): offsets, leader epochs and producer fields are kept, not
    /// assigned. Each batch is checked as stored batches are (CRC, lengths; compaction may
    /// have left gaps), the first must start at or past the log end and each after the one
    /// before (else `UnexpectedOffset`, nothing written); a higher leader epoch in a batch
    /// starts a new entry of the leader-epoch cache, as Kafka's follower does. Keeps slices
    /// of `records`. Returns once the bytes are in the page cache.
    pub async fn append_replicated(self: &Rc<Self>, records: &Bytes, now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_with(records, Writer::Replica, now_ms).await
    }

    /// Appends a transaction marker for `producer_id` (COMMIT or ABORT): its open
    /// transaction in this partition ends; an abort goes into the `.txnindex`.
    pub async fn append_marker(
        self: &Rc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        marker: i16,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let bytes = batch::control_batch(producer_id, producer_epoch, marker, coordinator_epoch, now_ms);
        self.append_inner(&Bytes::from(bytes), self.leader_epoch(), now_ms, true).await
    }

    async fn append_inner(
        self: &Rc<Self>,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
        control_allowed: bool,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(records, Writer::Leader { epoch: leader_epoch, control_allowed }, now_ms).await
    }

    async fn append_with(
        self: &Rc<Self>,
        records: &Bytes,
        writer: Writer,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let (control_allowed, check) = match writer {
            Writer::Leader { control_allowed, .. } => (control_allowed, Check::Produced),
            Writer::Replica => (true, Check::Stored),
        };
        let replica = matches!(writer, Writer::Replica);
        let spans = batch::validate_all(records, check)?;
        if spans.is_empty() {
            return Err(LogError::InvalidBatch(BatchError::InvalidRecords("no record batch".into())));
        }
        if !control_allowed && spans.iter().any(|s| s.header.is_control()) {
            let why = "control batches are written by the transaction coordinator, not by clients";
            return Err(LogError::InvalidBatch(BatchError::InvalidRecords(why.into())));
        }
        let config = self.config();
        if !replica && (config.validate_records || config.cleanup_compact) {
            for span in &spans {
                super::records::validate(&records[span.position..], &span.header, config.cleanup_compact)
                    .map_err(BatchError::from)?;
            }
        }
        let max = config.max_message_bytes as usize;
        // A replica takes what its leader took (Kafka's followers do not check either).
        if let Some(big) = spans.iter().find(|s| !replica && s.header.size_bytes() > max) {
            return Err(LogError::MessageTooLarge { size: big.header.size_bytes(), max });
        }
        loop {
            let queued = self.enqueue(records, &spans, writer, now_ms);
            if queued.is_err() {
                self.repair_soon();
            }
            match queued? {
                Enqueue::Done(info, epoch_changed, flush_now) => {
                    // Waiting starts before the writer may run: a write failure from here on
                    // fails this wait (`abort_waiters`).
                    let written = self.written.wait_for(as_watch(info.last_offset + 1));
                    self.start_writer();
                    if flush_now {
                        self.spawn_flush(info.last_offset + 1);
                    }
                    written.await.map_err(|_| LogError::Offline)?;
                    if epoch_changed {
                        self.persist_leader_epochs().await?;
                    }
                    return Ok(info);
                }
                Enqueue::Duplicate(info) => {
                    self.written.wait_for(as_watch(info.last_offset + 1)).await.map_err(|_| LogError::Offline)?;
                    return Ok(info);
                }
                Enqueue::NeedRoll(at) => {
                    self.roll(at).await?;
                    let base = self.next_offset();
                    self.schedule_roll_flush(base);
                }
                Enqueue::Busy => self.wait_structure().await,
            }
        }
    }

    /// The synchronous part of an append: assigns offsets (a leader's) or checks them (a
    /// replica's) and queues the bytes.
    fn enqueue(
        &self,
        records: &Bytes,
        spans: &[batch::BatchSpan],
        writer: Writer,
        now_ms: i64,
    ) -> Result<Enqueue, LogError> {
        let (leader_epoch, replica) = match writer {
            Writer::Leader { epoch, .. } => (epoch, false),
            Writer::Replica => (-1, true),
        };
        let config = self.config();
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if st.offline || st.write_failed {
            return Err(LogError::Offline);
        }
        if st.exclusive {
            return Ok(Enqueue::Busy);
        }
        let max_timestamp = spans.iter().map(|s| s.header.max_timestamp).max().unwrap_or(-1);
        if replica && !matches!(*self.role.borrow(), Role::Follower | Role::Alone) {
            // Checked here, with the queueing, where no other task can run in between.
            return Err(LogError::NotFollower);
        }
        let (first_offset, end) = if replica {
            replicated_offsets(spans, st.next_offset)?
        } else {
            // Computed before the sequence checks, whose offsets it bounds.
            let end = assigned_end(spans, st.next_offset)?;
            if let Some(duplicate) = check_sequences(&st.producers, spans, st.next_offset, st.log_start_offset)? {
                return Ok(Enqueue::Duplicate(duplicate));
            }
            (st.next_offset, end)
        };
        let last_offset = end - 1;
        if last_offset - first_offset > segment::RELATIVE_OFFSET_MAX {
            // Kafka's LogSegmentOffsetOverflowException: no segment could hold them all.
            let why = format!("offsets {first_offset}..={last_offset} in one append; a segment holds at most 2^31");
            return Err(LogError::InvalidBatch(BatchError::OffsetOverflow(why)));
        }
        let (&base, active) = st.segments.iter_mut().next_back().expect("a log always has an active segment");
        // An empty active segment is never rolled for size or age, but a replicated append
        // past a gap of more than 2^31 offsets (the leader's compaction left it) cannot be
        // addressed from its base either: it goes in a segment of its own (`roll`).
        let beyond_reach = last_offset - base > segment::RELATIVE_OFFSET_MAX && first_offset > base;
        if beyond_reach || active.state.should_roll(base, &config, records.len() as u64, max_timestamp, last_offset) {
            st.exclusive = true;
            return Ok(Enqueue::NeedRoll(first_offset));
        }
        let position = active.state.size;
        let job = queue_buffer(&mut st.queue, &active.log, base, position, records.len());
        let mut offset = first_offset;
        let mut new_epochs = Vec::new();
        for span in spans {
            let (at, size) = (span.position, span.header.size_bytes());
            let header = if replica {
                // As the leader wrote it; a newer leader epoch starts an entry of the cache.
                job.pieces.push(Piece::Shared(records.slice(at..at + size)));
                let epoch = span.header.partition_leader_epoch;
                let last = new_epochs.last().or(st.epochs.last()).map_or(-1, |e: &EpochEntry| e.epoch);
                if epoch >= 0 && epoch > last {
                    new_epochs.push(EpochEntry { epoch, start_offset: span.header.base_offset });
                }
                span.header
            } else {
                // baseOffset and partitionLeaderEpoch lie outside the CRC: patched in a copy of
                // the batch's first bytes, the rest goes to the file straight from the frame.
                let mut prefix = [0u8; batch::PATCHED_PREFIX_BYTES];
                prefix.copy_from_slice(&records[at..at + batch::PATCHED_PREFIX_BYTES]);
                batch::patch_base_offset(&mut prefix, offset);
                batch::patch_leader_epoch(&mut prefix, leader_epoch);
                job.pieces.push(Piece::Prefix(prefix));
                job.pieces.push(Piece::Shared(records.slice(at + batch::PATCHED_PREFIX_BYTES..at + size)));
                BatchHeader { base_offset: offset, partition_leader_epoch: leader_epoch, ..span.header }
            };
            job.len += size;
            active.state.account_batch(&header, position + at as u64, &config);
            st.producers.record(&header, now_ms);
            if header.is_control() {
                let commit = batch::control_type(&records[at..at + size]) == Some(batch::CONTROL_COMMIT);
                if let Some(aborted) = st.producers.marker(&header, commit, now_ms) {
                    st.txn_pending.push((base, aborted));
                }
            }
            offset = header.last_offset() + 1;
        }
        st.queue.back_mut().expect("just queued").end_offset = offset;
        st.next_offset = offset;
        st.first_unflushed_ms.get_or_insert(now_ms);
        let epoch_changed = if replica {
            let changed = !new_epochs.is_empty();
            st.epochs.extend(new_epochs);
            changed
        } else {
            let changed = leader_epoch >= 0 && st.epochs.last().is_none_or(|e| leader_epoch > e.epoch);
            if changed {
                st.epochs.push(EpochEntry { epoch: leader_epoch, start_offset: first_offset });
            }
            changed
        };
        let unflushed = (offset - self.synced.get() as i64).max(0) as u64;
        let flush_now = unflushed >= config.flush_messages && !st.flush_scheduled;
        st.flush_scheduled |= flush_now;
        drop(guard);
        let info = AppendInfo {
            first_offset,
            last_offset,
            batches: spans.len(),
            max_timestamp,
            log_start_offset: self.log_start_offset(),
        };
        Ok(Enqueue::Done(info, epoch_changed, flush_now))
    }

    /// Syncs up to `offset` in the background for `flush.messages`; the append does not wait
    /// for it. Clears the flag that keeps one such flush at a time.
    fn spawn_flush(self: &Rc<Self>, offset: i64) {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            // An error has already taken the partition offline; nothing more to do here.
            let _ = this.sync_to(offset).await;
            this.state.borrow_mut().flush_scheduled = false;
        })
        .detach();
    }

    /// As Kafka's roll, the segments sealed below `base` are flushed in the background (the
    /// append does not wait) and the recovery point moves up to `base`, so a start after a
    /// crash re-validates only what came after. The flush also lets go of the sealed
    /// segments' handles: without it a partition that never syncs (acks=1, no `flush.*`)
    /// would hold every rolled segment's descriptor for good.
    ///
    /// Unlike Kafka, not at once but `log.roll.flush.delay.ms` later (35 s by default): an
    /// fdatasync right after the roll writes the whole segment back itself, on an io-wq
    /// worker that runs on the shard's core — about 10 % of an acks=1 produce's CPU per GiB
    /// (bench/RESULTS.md (11), (12)) that the kernel's flusher threads spend anyway, off the
    /// shard, once the pages are `vm.dirty_expire_centisecs` old. Flushed after that, the
    /// pages are clean and the flush only commits the journal and flushes the device cache.
    /// A crash in between re-validates a little more of the log at the next start (at most
    /// what was written in the delay); nothing acknowledged depends on it (acks=all syncs).
    fn schedule_roll_flush(self: &Rc<Self>, base: i64) {
        let due = crate::runtime::now_ms().saturating_add(self.config().roll_flush_delay_ms);
        {
            let mut st = self.state.borrow_mut();
            st.roll_flushes.push_back((due, base));
            if std::mem::replace(&mut st.roll_flusher_running, true) {
                return;
            }
        }
        // Weak: a pending flush does not keep a closed or deleted partition alive.
        let weak = Rc::downgrade(self);
        glommio::spawn_local(async move {
            loop {
                let Some(log) = weak.upgrade() else { return };
                let due = {
                    let mut st = log.state.borrow_mut();
                    match st.roll_flushes.front() {
                        Some(&(due, _)) => due,
                        None => {
                            st.roll_flusher_running = false;
                            return;
                        }
                    }
                };
                drop(log);
                let wait = due - crate::runtime::now_ms();
                if wait > 0 {
                    glommio::timer::sleep(std::time::Duration::from_millis(wait as u64)).await;
                }
                let Some(log) = weak.upgrade() else { return };
                let upto = {
                    let mut st = log.state.borrow_mut();
                    let now = crate::runtime::now_ms();
                    let mut upto = None;
                    while let Some(&(_, base)) = st.roll_flushes.front().filter(|r| r.0 <= now) {
                        upto = Some(base);
                        st.roll_flushes.pop_front();
                    }
                    upto
                };
                if let Some(base) = upto {
                    // An error has already taken the partition offline; nothing more to do.
                    let _ = log.sync_sealed(base).await;
                }
                let mut st = log.state.borrow_mut();
                if st.roll_flushes.is_empty() || st.offline {
                    st.roll_flushes.clear();
                    st.roll_flusher_running = false;
                    return;
                }
            }
        })
        .detach();
    }

    /// Starts the writer task unless it runs already.
    fn start_writer(self: &Rc<Self>) {
        {
            let mut st = self.state.borrow_mut();
            if st.writer_running || st.queue.is_empty() {
                return;
            }
            st.writer_running = true;
        }
        let this = Rc::clone(self);
        glommio::spawn_local(async move { this.write_queued().await }).detach();
    }

    /// The partition's single writer: writes queued runs in order, one at a time, and
    /// publishes the new log end after each.
    async fn write_queued(self: Rc<Self>) {
        loop {
            let job = {
                let mut st = self.state.borrow_mut();
                if st.write_failed || st.offline {
                    st.writer_running = false;
                    return;
                }
                match st.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        st.writer_running = false;
                        return;
                    }
                }
            };
            let end = job.position + job.len as u64;
            let written = match self.config().write_method {
                WriteMethod::Pwritev => segment::write_pieces(&job.file.file, &job.pieces, job.position).await,
                WriteMethod::IoUring => {
                    segment::write_fully(&job.file.file, segment::gather(&job.pieces, job.len), job.position).await
                }
            };
            if let Err(e) = written {
                self.write_failed(&e);
                self.state.borrow_mut().writer_running = false;
                return;
            }
            if let Some(seg) = self.state.borrow_mut().segments.get_mut(&job.segment_base) {
                seg.written = seg.written.max(end);
            }
            self.written.advance(as_watch(job.end_offset));
            self.recompute_high_watermark();
            self.write_behind(&job.file, job.segment_base, job.position, end);
        }
    }

    /// `log.write.behind.bytes`: once that many bytes of the active segment are written but
    /// not yet handed to writeback, starts writeback of them (`sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`: submits, does not wait for the disk), so dirty pages do not
    /// pile up to the kernel's background threshold (10 % of memory) and reclaim finds clean
    /// ones. Off by default: at 4 MiB it did not lower produce-ack tails on this VM (p99
    /// 5.3-7.8 ms vs 5.8-6.5 ms off, three alternating pairs, bench/RESULTS.md 2026-12-04);
    /// kept for disks slow enough that the flusher's bursts stall writers. Not durability:
    /// acks=all still waits for fdatasync.
    fn write_behind(&self, file: &SegmentFile, base: i64, position: u64, end: u64) {
        let window = self.config().write_behind_bytes;
        if window == 0 {
            return;
        }
        let from = {
            let mut st = self.state.borrow_mut();
            if st.behind.0 != base {
                st.behind = (base, position);
            }
            if end - st.behind.1 < window {
                return;
            }
            std::mem::replace(&mut st.behind.1, end)
        };
        // SAFETY: a plain syscall on an open descriptor. An error only means writeback starts
        // later (the flusher does it); nothing depends on it.
        unsafe {
            libc::sync_file_range(
                file.file.as_raw_fd(),
                from as libc::off64_t,
                (end - from) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
    }

    /// A write did not reach the page cache (ENOSPC, EIO on write, or an index or `.txnindex`
    /// write of a sync round). Its appends and every one queued after it fail
    /// (KAFKA_STORAGE_ERROR, which producers retry); nothing of them is visible, because
    /// readers never go past `written`. Appends are refused until `repair` has cut the files
    /// back to `written` and rebuilt what was accounted for the lost bytes; the next append
    /// attempt starts it (at most once per [`REPAIR_RETRY`]), so the partition takes writes
    /// again without a restart once space returns. (A failed fdatasync is `go_offline`.)
    fn write_failed(&self, error: &LogError) {
        let first = {
            let mut st = self.state.borrow_mut();
            st.queue.clear();
            !std::mem::replace(&mut st.write_failed, true)
        };
        self.written.abort_waiters();
        if first {
            let dir = self.dir.display();
            eprintln!("sluice: partition {dir}: a write failed ({error}): refusing appends until it is repaired");
        }
    }

    /// Starts a repair in the background if the log needs one and none ran within
    /// [`REPAIR_RETRY`].
    fn repair_soon(self: &Rc<Self>) {
        {
            let mut st = self.state.borrow_mut();
            let now = crate::runtime::now_ms();
            if !st.write_failed || st.offline || st.repairing || now < st.repair_not_before_ms {
                return;
            }
            st.repairing = true;
            st.repair_not_before_ms = now + REPAIR_RETRY.as_millis() as i64;
        }
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            match this.repair().await {
                Ok(end) => {
                    eprintln!(
                        "sluice: partition {}: repaired, taking writes again at offset {end}",
                        this.dir.display()
                    );
                }
                Err(e) => eprintln!(
                    "sluice: partition {}: repair failed (retried on a later append): {e}",
                    this.dir.display()
                ),
            }
            this.state.borrow_mut().repairing = false;
        })
        .detach();
    }

    /// After a failed write: cuts the log back to what reached the page cache (`written`),
    /// removing any partial batch from the file, rebuilds the segment's indexes and the
    /// producer state from the log, and takes appends again. Returns the log end.
    pub async fn repair(&self) -> Result<i64, LogError> {
        if !self.state.borrow().write_failed {
            return Ok(self.log_end_offset());
        }
        if self.state.borrow().writer_running {
            return Err(LogError::Corrupt("a write is still under way".into()));
        }
        let end = self.truncate_with(self.log_end_offset(), true).await?;
        self.state.borrow_mut().write_failed = false;
        Ok(end)
    }

    fn go_offline(&self, error: &LogError) {
        {
            let mut st = self.state.borrow_mut();
            st.offline = true;
            st.queue.clear();
            st.writer_running = false;
        }
        eprintln!("sluice: partition {} is offline: {error}", self.dir.display());
        self.written.fail();
        self.hw.fail();
        self.synced.fail();
        self.sync_rounds.fail();
    }

    /// Seals the active segment and starts a new one at the log end, unless the active
    /// segment is empty. Used before a rewrite that makes everything older obsolete.
    pub async fn roll_now(&self) -> Result<(), LogError> {
        loop {
            {
                let mut st = self.state.borrow_mut();
                if st.offline {
                    return Err(LogError::Offline);
                }
                if !st.exclusive {
                    let (_, active) = st.segments.iter().next_back().expect("a log always has an active segment");
                    if active.state.size == 0 {
                        return Ok(());
                    }
                    st.exclusive = true;
                    break;
                }
            }
            self.wait_structure().await;
        }
        self.roll(i64::MIN).await
    }

    /// Waits for the roll or truncation under way (`exclusive`) to make progress. Its task
    /// holds `structure` while it works, but between being woken with the permit and running
    /// it holds nothing: taking the free permit here and looping would spin without ever
    /// letting that task run (a shard stuck at 100 % CPU). So after the permit, yield: the
    /// woken task runs first.
    async fn wait_structure(&self) {
        drop(self.structure.acquire_permit(1).await);
        futures_lite::future::yield_now().await;
    }

    /// Rolls to a new segment at the log end, or at `at` when that lies past it (Kafka's
    /// `roll(max(firstOffset, logEndOffset))`: a replicated append whose leader's log has a
    /// gap there, as compaction leaves). In that case the log end moves to `at` with the
    /// roll, once the writes queued before it have landed, so the next append (leader's or
    /// replica's) goes to the active segment and never below its base, even if the
    /// replicated append that asked for the roll is refused when it tries again.
    async fn roll(&self, at: i64) -> Result<(), LogError> {
        let _permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        // `next` stays the log end meanwhile: `exclusive` keeps appends out, the permit
        // truncations.
        let next = self.state.borrow().next_offset;
        let base = at.max(next);
        let created = async {
            if base > next {
                self.queued_written().await?;
            }
            Segment::create(&self.dir, base, &self.config()).await
        }
        .await;
        self.state.borrow_mut().exclusive = false;
        let old_base = self.state.borrow().segments.keys().next_back().copied();
        let closed_index_writes = self.install_rolled(base, created?);
        if base > next {
            // Nothing lies in the gap: it is written as far as it ever will be.
            self.state.borrow_mut().next_offset = base;
            self.written.advance(as_watch(base));
            self.recompute_high_watermark();
        }
        if let (Some(writes), Some(old_base)) = (closed_index_writes, old_base) {
            // The roll itself stands (the new segment takes this append); the old segment's
            // indexes are derived data, written again later.
            if let Err(e) = writes.apply().await {
                eprintln!("sluice: {}: index of segment {old_base} not written at its roll: {e}", self.dir.display());
                self.index_write_failed(old_base);
            }
        }
        Ok(())
    }

    /// An index write of segment `base` failed: its index files go (a partial one
    /// could pass as sane and hide entries; a missing one is rebuilt at the next start) and
    /// it is written whole again by a later sync round or `close`.
    fn index_write_failed(&self, base: i64) {
        let dir = self.dir.clone();
        let mut st = self.state.borrow_mut();
        if let Some(seg) = st.segments.get_mut(&base) {
            seg.remove_index_files(&dir);
            if !st.index_rewrites.contains(&base) {
                st.index_rewrites.push(base);
            }
        }
    }

    /// Writes (and fdatasyncs) the indexes whose writes failed. Errors are logged
    /// and the segments stay listed: nothing acknowledged depends on them.
    async fn rewrite_failed_indexes(&self) {
        let bases = std::mem::take(&mut self.state.borrow_mut().index_rewrites);
        for base in bases {
            let writes = self.state.borrow_mut().segments.get_mut(&base).map(|seg| seg.take_index_writes(true));
            let Some(writes) = writes else { continue }; // deleted meanwhile
            if let Err(e) = writes.apply_synced().await {
                eprintln!("sluice: {}: index of segment {base} still not written: {e}", self.dir.display());
                self.index_write_failed(base);
            }
        }
    }

    /// Makes `segment` the active one and seals the old one, which the next sync round will
    /// fsync with its indexes. Returns the old segment's index entries still to be written:
    /// sync rounds and close only write the active segment's.
    fn install_rolled(&self, base: i64, segment: Segment) -> Option<segment::IndexWrites> {
        let mut st = self.state.borrow_mut();
        let mut closed_index_writes = None;
        if let Some((_, old)) = st.segments.iter_mut().next_back() {
            old.state.seal();
            closed_index_writes = Some(old.take_index_writes(false));
            let entry = (old.log.clone(), old.index_files.clone());
            st.closed_unsynced.push(entry);
        }
        st.segments.insert(base, segment);
        st.dir_dirty = true;
        closed_index_writes
    }

    /// Waits until every offset below `offset` is on disk, sharing fdatasync rounds with every
    /// other waiter (group commit). acks=all waits on this.
    pub async fn sync_to(&self, offset: i64) -> Result<(), LogError> {
        self.sync_upto(offset, false).await
    }

    /// `sync_to(base)` for the flush after a roll to `base`: when it needs a round of its own,
    /// that round syncs the sealed segments (and the directory) but not the active one,
    /// whose pages the kernel may still be writing back. Offsets below `base` all lie in
    /// sealed segments, so they are then on disk all the same. A truncation since may have
    /// cut the log below `base`: then up to the active segment's base.
    pub async fn sync_sealed(&self, base: i64) -> Result<(), LogError> {
        let active_base = self.state.borrow().segments.keys().next_back().copied().unwrap_or(0);
        self.sync_upto(base.min(active_base), true).await
    }

    async fn sync_upto(&self, offset: i64, sealed_only: bool) -> Result<(), LogError> {
        let target = as_watch(offset);
        loop {
            if self.synced.get() >= target {
                return Ok(());
            }
            // After a failed fdatasync a later one may well succeed (the kernel reports a
            // writeback error once) while the pages it failed to write are gone: never again.
            if self.state.borrow().offline {
                return Err(LogError::Offline);
            }
            // Offsets of appends dropped by a failed write are written only if later appends
            // take them again (after `repair`): not something to wait for.
            if self.state.borrow().write_failed && self.written.get() < target {
                return Err(LogError::Offline);
            }
            self.written.wait_for(target).await.map_err(|_| LogError::Offline)?;
            if self.synced.get() >= target {
                return Ok(());
            }
            let round = self.sync_rounds.get();
            let running = std::mem::replace(&mut self.state.borrow_mut().sync_running, true);
            if running {
                self.sync_rounds.wait_for(round + 1).await.map_err(|_| LogError::Offline)?;
                continue;
            }
            let result = self.sync_round(sealed_only.then_some(target)).await;
            self.state.borrow_mut().sync_running = false;
            self.sync_rounds.advance(round + 1);
            match result {
                Ok(()) => {}
                Err(RoundError::Write(e)) => {
                    self.write_failed(&e);
                    return Err(e);
                }
                Err(RoundError::Sync(e)) => {
                    self.go_offline(&e);
                    return Err(e);
                }
            }
        }
    }

    /// One fdatasync round: covers everything written when it starts — or, with `sealed`
    /// (an offset no higher than the active segment's base, all written), only the sealed
    /// segments, up to that offset. A failed write of a `.txnindex` is a `RoundError::Write`
    /// (rebuilt by `repair`), a failed fdatasync a `RoundError::Sync`; a failed index write
    /// fails nothing (`index_write_failed`).
    async fn sync_round(&self, sealed: Option<u64>) -> Result<(), RoundError> {
        use RoundError::{Sync, Write};
        let _permit = self.structure.acquire_permit(1).await.map_err(|_| Sync(LogError::Offline))?;
        self.rewrite_failed_indexes().await;
        let written = self.written.get();
        let active_base = self.state.borrow().segments.keys().next_back().map_or(0, |&b| as_watch(b));
        // A truncation between the caller's check and the permit: sync it all.
        let sealed = sealed.filter(|&upto| upto <= active_base && upto <= written);
        let covered = sealed.unwrap_or(written);
        // The active segment's new index entries reach their files too (opened for it: two
        // opens per round that has entries), so what is on disk after a sync is what Kafka's
        // mmapped indexes would show a tool; not fdatasynced — after a crash the active
        // segment's indexes are rebuilt from the `.log`.
        let (active, index_writes, closed, dir_dirty, txn_entries) = {
            let mut st = self.state.borrow_mut();
            let (_, seg) = st.segments.iter_mut().next_back().expect("active segment");
            let active = seg.log.clone();
            // A sealed-only round leaves the active segment's entries for a later round.
            let writes = sealed.is_none().then(|| seg.take_index_writes(false));
            // A sealed-only round takes the segments wholly below its offset, not those
            // sealed since, whose pages the kernel has not had time to write back.
            let closed = match sealed {
                None => std::mem::take(&mut st.closed_unsynced),
                Some(upto) => {
                    let (below, later) = std::mem::take(&mut st.closed_unsynced)
                        .into_iter()
                        .partition(|(log, _)| as_watch(log.base_offset) < upto);
                    st.closed_unsynced = later;
                    below
                }
            };
            let dir_dirty = std::mem::replace(&mut st.dir_dirty, false);
            let txn_entries = std::mem::take(&mut st.txn_pending);
            (active, writes, closed, dir_dirty, txn_entries)
        };
        let sync = |e: LogError| Sync(e);
        for (log, indexes) in &closed {
            fdatasync(&log.file).await.map_err(sync)?;
            indexes.sync().await.map_err(sync)?;
        }
        // Entries that fail to reach their `.txnindex` are rewritten whole by `repair` (and
        // after a restart without a clean shutdown the aborted-transaction list comes from
        // the log's markers, never from a `.txnindex`).
        let mut bases: Vec<i64> = txn_entries.iter().map(|(b, _)| *b).collect();
        bases.dedup();
        for base in bases {
            let entries: Vec<&producer::AbortedTxn> =
                txn_entries.iter().filter(|(b, _)| *b == base).map(|(_, a)| a).collect();
            append_txn_entries(&self.dir, base, &entries).await.map_err(Write)?;
        }
        // As at a roll: a failed index write fails nobody's sync (the entries are derived
        // data); the files go and are written whole again later.
        if let Some(index_writes) = index_writes {
            if let Err(e) = index_writes.apply().await {
                let base = active.base_offset;
                eprintln!("sluice: {}: index of segment {base} not written: {e}", self.dir.display());
                self.index_write_failed(base);
            }
            fdatasync(&active.file).await.map_err(sync)?;
        }
        if dir_dirty {
            sync_dir(&self.dir).await.map_err(sync)?;
        }
        self.synced.advance(covered);
        let mut st = self.state.borrow_mut();
        if covered as i64 >= st.next_offset {
            st.first_unflushed_ms = None;
        }
        Ok(())
    }

    /// `flush.ms`: syncs when the oldest unsynced append is older than the setting.
    pub async fn flush_if_due(&self, now_ms: i64) -> Result<bool, LogError> {
        let (due, next) = {
            let st = self.state.borrow();
            let due = st.first_unflushed_ms.is_some_and(|t| now_ms.saturating_sub(t) >= self.config().flush_ms);
            (due, st.next_offset)
        };
        if due {
            self.sync_to(next).await?;
        }
        Ok(due)
    }

    /// Reads from `from`: a range of whole batches starting with the batch that holds
    /// `from`, at most `max_bytes` long unless `at_least_one` and the first batch alone is
    /// larger (Kafka's rule for the first partition of a fetch). Never past the high
    /// watermark.
    pub async fn read(&self, from: i64, max_bytes: usize, at_least_one: bool) -> Result<ReadInfo, LogError> {
        self.read_upto(from, max_bytes, at_least_one, false).await
    }

    /// `read`, for a read_committed consumer (`committed`) bounded by the last stable offset.
    pub async fn read_upto(
        &self,
        from: i64,
        max_bytes: usize,
        at_least_one: bool,
        committed: bool,
    ) -> Result<ReadInfo, LogError> {
        let upper = if committed { self.last_stable_offset() } else { self.high_watermark() };
        self.read_below(from, max_bytes, at_least_one, upper, self.high_watermark()).await
    }

    /// `read` for a follower (replica fetch): up to the log end, past the high watermark.
    pub async fn read_replica(&self, from: i64, max_bytes: usize) -> Result<ReadInfo, LogError> {
        let end = self.log_end_offset();
        let mut info = self.read_below(from, max_bytes, true, end, end).await?;
        info.high_watermark = self.high_watermark();
        Ok(info)
    }

    /// Reads whole batches from `from`, stopping before `upper`; `hw` bounds the offsets
    /// that may be asked for (past it: OffsetOutOfRange) and is what the answer reports.
    async fn read_below(
        &self,
        from: i64,
        max_bytes: usize,
        at_least_one: bool,
        upper: i64,
        hw: i64,
    ) -> Result<ReadInfo, LogError> {
        let log_start = self.log_start_offset();
        if from < log_start || from > hw {
            return Err(LogError::OffsetOutOfRange { offset: from, log_start, log_end: hw });
        }
        let mut info = ReadInfo {
            range: None,
            first_offset: from,
            next_offset: from,
            log_start_offset: log_start,
            high_watermark: hw,
            log_end_offset: hw,
        };
        if from >= upper {
            return Ok(info);
        }
        // Walk segments from the one holding `from`; later ones only matter after a gap.
        let mut cursor = self.segment_for(from, None);
        while let Some((file, start, mut end)) = cursor {
            if upper < self.log_end_offset() {
                // Stop before the batch holding the last stable offset or the high watermark
                // (batch boundaries both).
                if let Some(open) = file.find_batch(start as u64, upper, end).await? {
                    end = open.position;
                }
            }
            if let Some(found) = file.find_batch(start as u64, from, end).await? {
                let position = found.position;
                let first_size = found.header.size_bytes() as u64;
                let limit = (position + max_bytes as u64).min(end);
                let skip = self.index_floor_position(file.base_offset, limit).max(position);
                let (mut stop, mut next) = walk_or_fallback(&file, position, skip, limit).await?;
                if stop == position {
                    if !at_least_one {
                        info.first_offset = found.header.base_offset;
                        return Ok(info);
                    }
                    stop = position + first_size;
                    next = found.header.last_offset() + 1;
                }
                info.first_offset = found.header.base_offset;
                info.next_offset = next;
                info.range = Some(FileRange { file, position, length: stop - position });
                return Ok(info);
            }
            cursor = self.segment_for(from, Some(file.base_offset));
        }
        Ok(info)
    }

    /// The segment to search for `from`: the one holding it, or (`after` set) the next one
    /// after `after`. Returns its file, the index position to start from and the written end.
    fn segment_for(&self, from: i64, after: Option<i64>) -> Option<(Rc<SegmentFile>, u32, u64)> {
        let st = self.state.borrow();
        let seg = match after {
            None => st.segments.range(..=from).next_back().map(|(_, s)| s).or_else(|| st.segments.values().next())?,
            Some(after) => st.segments.range(after + 1..).next().map(|(_, s)| s)?,
        };
        let (_, start) = seg.state.index.floor(from);
        Some((seg.log.clone(), start.min(seg.written as u32), seg.written))
    }

    fn index_floor_position(&self, base: i64, limit: u64) -> u64 {
        let st = self.state.borrow();
        st.segments.get(&base).map_or(0, |s| s.state.index.floor_position(limit.min(u32::MAX as u64) as u32) as u64)
    }

    /// The copying read path: the same range as `read`, copied into memory.
    pub async fn read_copy(
        &self,
        from: i64,
        max_bytes: usize,
        at_least_one: bool,
    ) -> Result<(Vec<u8>, ReadInfo), LogError> {
        let info = self.read(from, max_bytes, at_least_one).await?;
        let bytes = match &info.range {
            Some(r) => r.file.read_range(r.position, r.length as usize).await?,
            None => Vec::new(),
        };
        Ok((bytes, info))
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is at or after
    /// `timestamp`, with that record's timestamp; `None` when every record is older.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let candidates: Vec<(Rc<SegmentFile>, i64, u32, u64)> = {
            let st = self.state.borrow();
            st.segments
                .values()
                .filter(|s| s.state.max_timestamp >= timestamp)
                .map(|s| {
                    let from = s.state.time_index.floor_offset(timestamp).max(st.log_start_offset);
                    (s.log.clone(), from, s.state.index.floor(from).1, s.written)
                })
                .collect()
        };
        let log_start = self.log_start_offset();
        for (file, from, start, end) in candidates {
            let mut position = start as u64;
            while let Some(header) = file.read_header_at(position, end).await? {
                if header.last_offset() >= from && header.max_timestamp >= timestamp {
                    let bytes = file.read_range(position, header.size_bytes()).await?;
                    if let Some(found) = first_record_at_or_after(bytes, timestamp, log_start.max(from))? {
                        return Ok(Some(found));
                    }
                }
                position += header.size_bytes() as u64;
            }
        }
        Ok(None)
    }

    /// What ListOffsets v0 answers from (Kafka's `legacyFetchOffsetsBefore`): each
    /// segment's base offset (at least the log start) with the time its `.log` file was
    /// last written, oldest first, then — when the newest segment holds data — the log end
    /// with `now_ms`.
    pub fn offsets_by_write_time(&self, now_ms: i64) -> Result<Vec<(i64, i64)>, LogError> {
        let st = self.state.borrow();
        let mut points = Vec::with_capacity(st.segments.len() + 1);
        for segment in st.segments.values() {
            points.push((segment.base_offset.max(st.log_start_offset), segment.log.last_modified_ms()?));
        }
        if st.segments.values().next_back().is_some_and(|s| s.written > 0) {
            points.push((self.log_end_offset(), now_ms));
        }
        Ok(points)
    }

    /// ListOffsets with MAX_TIMESTAMP: the record with the largest timestamp, (offset, timestamp).
    pub async fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let newest = {
            let st = self.state.borrow();
            st.segments.values().map(|s| s.state.max_timestamp).max().unwrap_or(-1)
        };
        if newest < 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(newest).await
    }

    /// Removes every batch whose last offset is at or past `offset` (replication's
    /// truncation to a leader's log). Batches are never split. Returns the new log end.
    pub async fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        // After a failed write, first cut the files back to what reached the page cache (as
        // `truncate_fully_and_start_at` does): the offsets of the failed appends never will.
        self.repair().await?;
        self.truncate_with(offset, false).await
    }

    /// Waits until every append queued so far is written. Never for ever: after a failed
    /// write (whose appends, and all queued after it, were dropped: `write_failed`) it fails
    /// at once, as the wait does when a write fails while it waits (`abort_waiters`).
    async fn queued_written(&self) -> Result<(), LogError> {
        let next = {
            let st = self.state.borrow();
            if st.write_failed {
                return Err(LogError::Offline);
            }
            st.next_offset
        };
        self.written.wait_for(as_watch(next)).await.map_err(|_| LogError::Offline)?;
        Ok(())
    }

    /// The structure lock, taken while no cleaning is swapping segments in (one that is
    /// gets to finish first).
    async fn structure_between_swaps(&self) -> Result<glommio::sync::Permit<'_>, LogError> {
        loop {
            let permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
            if self.state.borrow().swap_pending.is_none() {
                return Ok(permit);
            }
            drop(permit);
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// `truncate_to`, or (`repair`) the cut after a failed write: to `written`, dropping the
    /// offsets assigned to appends that never reached the page cache, and cutting the file
    /// at the last whole batch written (a partial one may follow it).
    async fn truncate_with(&self, offset: i64, repair: bool) -> Result<i64, LogError> {
        let _permit = self.structure_between_swaps().await?;
        self.state.borrow_mut().exclusive = true;
        if repair {
            let mut st = self.state.borrow_mut();
            st.next_offset = offset;
            st.txn_pending.clear(); // rewritten whole below
        }
        let mut result = self.truncate_locked(offset, repair).await;
        if result.is_ok() {
            // Batches past the cut are gone: their producers' state must go with them.
            let rebuilt = {
                let st = self.state.borrow();
                scan_producers(&st.segments, i64::MIN, crate::runtime::now_ms())
            };
            match rebuilt.await {
                Ok(p) => {
                    self.state.borrow_mut().txn_pending.clear(); // rewritten whole below
                    let bases = self.segment_bases();
                    if let Err(e) = rewrite_txn_indexes(&self.dir, &bases, &p.aborted) {
                        result = Err(e);
                    }
                    self.state.borrow_mut().producers = p;
                }
                Err(e) => result = Err(e),
            }
        }
        self.state.borrow_mut().exclusive = false;
        result
    }

    async fn truncate_locked(&self, offset: i64, repair: bool) -> Result<i64, LogError> {
        let next = self.next_offset();
        if !repair {
            self.queued_written().await?;
            if offset >= next {
                return Ok(next);
            }
        }
        let offset = offset.max(0);
        let (removed, keep) = {
            let mut st = self.state.borrow_mut();
            st.truncations += 1;
            let first = *st.segments.keys().next().expect("segment");
            let cut_from = if offset <= first { first } else { offset };
            let removed: Vec<i64> = st.segments.range(cut_from..).map(|(b, _)| *b).collect();
            let removed: Vec<i64> = removed.into_iter().filter(|b| *b > first || offset <= first).collect();
            for b in &removed {
                st.segments.remove(b);
            }
            let keep =
                st.segments.values().next_back().map(|s| (s.log.clone(), s.state.index.floor(offset).1, s.written));
            (removed, keep)
        };
        // Newest first: a failure (or a crash) part way leaves a shorter log, never one with
        // a hole where an older segment went and a newer one stayed.
        for base in removed.iter().rev() {
            Segment::delete_files(&self.dir, *base)?;
        }
        match keep {
            Some((file, start, end)) => {
                // Cut at the first batch at or past `offset`, else at what was written (after a
                // failed write a partial batch may lie beyond it).
                let cut = file.find_batch(start as u64, offset, end).await?.map_or(end, |found| found.position);
                if file.file.file_size().await? > cut {
                    file.file.truncate(cut).await?;
                }
                let (state, _) = SegmentState::scan(&file, &self.config()).await?;
                let writes = {
                    let mut st = self.state.borrow_mut();
                    let seg = st.segments.get_mut(&file.base_offset).expect("kept segment");
                    seg.install(state);
                    seg.take_index_writes(true)
                };
                writes.apply().await?;
            }
            None => {
                let seg = Segment::create(&self.dir, offset, &self.config()).await?;
                let mut st = self.state.borrow_mut();
                st.segments.insert(offset, seg);
                st.log_start_offset = offset;
            }
        }
        let new_end = {
            let mut st = self.state.borrow_mut();
            let end = st.segments.values().next_back().expect("segment").state.next_offset;
            st.next_offset = end;
            st.log_start_offset = st.log_start_offset.min(end);
            st.epochs.retain(|e| e.start_offset < end);
            st.dir_dirty = true;
            end
        };
        self.written.reset(as_watch(new_end).min(self.written.get()));
        self.synced.reset(as_watch(new_end).min(self.synced.get()));
        self.hw.reset(as_watch(new_end).min(self.hw.get()));
        self.persist_leader_epochs().await?;
        self.lower_cleaned_upto(new_end).await?;
        Ok(new_end)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (not past the high
    /// watermark) and deletes the segments wholly below it; the leader-epoch cache starts
    /// there too. A new log start past the first segment's base (which a start would take
    /// instead) is told to the `on_log_start_moved` listener.
    pub async fn advance_log_start(&self, offset: i64) -> Result<i64, LogError> {
        let (start, hw) = (self.log_start_offset(), self.high_watermark());
        if offset > hw || offset < 0 {
            return Err(LogError::OffsetOutOfRange { offset, log_start: start, log_end: hw });
        }
        if offset > start {
            self.state.borrow_mut().log_start_offset = offset;
        }
        self.delete_segments(|_, _| false).await?;
        let (now, first_base) = {
            let st = self.state.borrow();
            (st.log_start_offset, st.segments.keys().next().copied().unwrap_or(0))
        };
        if now > start && now > first_base {
            if let Some(listener) = &*self.log_start_listener.borrow() {
                (listener.0)(now);
            }
        }
        Ok(now)
    }

    /// `listener` is told each new log start `advance_log_start` sets that the segments
    /// alone would not restore when the log is opened again (it lies inside the first
    /// segment): the owner of `log-start-offset-checkpoint` writes it there. Replaces any
    /// earlier listener. Called synchronously, within `advance_log_start`: it may read
    /// this log but not give it another listener.
    pub fn on_log_start_moved(&self, listener: impl Fn(i64) + 'static) {
        *self.log_start_listener.borrow_mut() = Some(LogStartListener(Box::new(listener)));
    }

    /// Whether this log follows a leader (`follow`).
    pub fn is_follower(&self) -> bool {
        matches!(*self.role.borrow(), Role::Follower)
    }

    /// Kafka's `truncateFullyAndStartAt`: every segment goes and the log starts again, empty,
    /// at `offset` — log start = log end = high watermark = `offset` — with no leader epochs
    /// (their checkpoint is rewritten empty), no producer state and no producer snapshots. A
    /// follower does this when its log ends below its leader's log start (retention or
    /// DeleteRecords removed the offsets it lacks) and copies on from there.
    ///
    /// The new segment is created before the old ones are deleted, and nothing of the old
    /// log is left at or past `offset` by then (it is cut there first): a start after a crash
    /// in between finds either the old log ending below `offset` with an empty segment above
    /// the hole, which `open` drops (the follower then fetches, is refused and does this
    /// again), or a log that simply ends at `offset`. Deleting them first would leave no
    /// segment at all for a moment, which every other path assumes cannot happen.
    pub async fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        // After a failed write: first cut the files back to what reached the page cache, so
        // that no torn bytes stay in a segment this keeps.
        self.repair().await?;
        let _permit = self.structure_between_swaps().await?;
        self.state.borrow_mut().exclusive = true;
        let result = self.truncate_fully_locked(offset).await;
        self.state.borrow_mut().exclusive = false;
        result
    }

    async fn truncate_fully_locked(&self, offset: i64) -> Result<(), LogError> {
        // Appends queued before `exclusive` was set land first, in the old segments.
        let next = self.next_offset();
        self.queued_written().await?;
        if offset < next {
            self.truncate_locked(offset, false).await?;
        }
        // Now a segment based at `offset` can only be an empty one (created by the cut, or the
        // active segment of a log ending at `offset`): it is kept, else one is created.
        let reuse = self.state.borrow().segments.contains_key(&offset);
        let created = if reuse {
            None
        } else {
            match Segment::create(&self.dir, offset, &self.config()).await {
                Ok(seg) => Some(seg),
                Err(e) => {
                    let _ = Segment::delete_files(&self.dir, offset);
                    return Err(e);
                }
            }
        };
        let old_bases: Vec<i64> = {
            let mut st = self.state.borrow_mut();
            let mut old = std::mem::take(&mut st.segments);
            let kept = old.remove(&offset);
            let Some(new) = created.or(kept) else {
                st.segments = old; // cannot happen: checked above with no await in between
                return Err(LogError::Corrupt(format!("no segment at {offset} to start the log at")));
            };
            st.segments.insert(offset, new);
            st.truncations += 1;
            st.log_start_offset = offset;
            st.next_offset = offset;
            st.epochs.clear();
            st.producers = ProducerStates::default();
            st.queue.clear();
            st.closed_unsynced.clear();
            st.txn_pending.clear();
            st.index_rewrites.clear();
            st.behind = (-1, 0);
            st.first_unflushed_ms = None;
            st.dir_dirty = true;
            old.into_keys().collect()
        };
        let at = as_watch(offset);
        for watch in [&self.written, &self.hw] {
            if at > watch.get() {
                watch.advance(at);
            } else {
                watch.reset(at);
            }
        }
        // Oldest first: a failure part way leaves the newer segments, a log with no hole.
        for base in old_bases {
            Segment::delete_files(&self.dir, base)?;
        }
        rewrite_txn_indexes(&self.dir, &[offset], &[])?;
        remove_snapshots(&self.dir)?;
        self.persist_leader_epochs().await?; // none: cleared above
        self.lower_cleaned_upto(offset).await?;
        sync_dir(&self.dir).await?;
        self.state.borrow_mut().dir_dirty = false;
        // Nothing below `offset` is left to sync: the new segment is empty and in the directory.
        if at > self.synced.get() {
            self.synced.advance(at);
        } else {
            self.synced.reset(at);
        }
        Ok(())
    }

    /// Retention: deletes closed segments, oldest first, while `retention.ms` says their newest
    /// record is too old or `retention.bytes` says the log is too big, and any segment wholly
    /// below the log start offset. The active segment is never deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        let expiration = self.config().producer_id_expiration_ms;
        {
            let mut st = self.state.borrow_mut();
            let log_start = st.log_start_offset;
            st.producers.expire(crate::runtime::now_ms(), expiration);
            st.producers.forget_aborted_below(log_start);
        }
        let config = self.config();
        let (retention_ms, retention_bytes) = (config.retention_ms, config.retention_bytes);
        let total = self.size_bytes();
        let delete = config.cleanup_delete;
        let expired = move |seg: &SegmentState, deleted_so_far: u64| {
            if !delete {
                return false; // cleanup.policy=compact alone: only segments below the log start go
            }
            let too_old = retention_ms >= 0 && seg.max_timestamp >= 0 && now_ms - seg.max_timestamp > retention_ms;
            let too_big = retention_bytes >= 0 && total - deleted_so_far >= retention_bytes as u64 + seg.size;
            too_old || too_big
        };
        self.delete_segments(expired).await
    }

    /// Deletes, oldest first, closed segments that `expired` (given the bytes deleted so far)
    /// or that lie wholly below the log start; stops at the first one to keep. The
    /// leader-epoch cache then starts at the log start too (`truncate_epochs_from_start`).
    async fn delete_segments(
        &self,
        expired: impl Fn(&SegmentState, u64) -> bool,
    ) -> Result<RetentionOutcome, LogError> {
        let _permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        let mut outcome = RetentionOutcome::default();
        let (removed, epochs_moved) = {
            let mut st = self.state.borrow_mut();
            let bases: Vec<i64> = st.segments.keys().copied().collect();
            let mut removed = Vec::new();
            for pair in bases.windows(2) {
                let (base, next_base) = (pair[0], pair[1]);
                let seg = &st.segments[&base];
                if st.swap_pending.is_some_and(|(from, to)| base >= from && base < to) {
                    break; // a cleaning is swapping it; next time
                }
                if !(next_base <= st.log_start_offset || expired(&seg.state, outcome.deleted_bytes)) {
                    break;
                }
                outcome.deleted_bytes += seg.state.size;
                outcome.deleted_segments += 1;
                removed.push(base);
                st.log_start_offset = st.log_start_offset.max(next_base);
            }
            for base in &removed {
                st.segments.remove(base);
            }
            st.txn_pending.retain(|(b, _)| !removed.contains(b));
            // A deleted segment needs no flush: its descriptor goes now, not at the next round.
            st.closed_unsynced.retain(|(log, _)| !removed.contains(&log.base_offset));
            if !removed.is_empty() {
                st.dir_dirty = true;
            }
            outcome.log_start_offset = st.log_start_offset;
            let start = st.log_start_offset;
            (removed, truncate_epochs_from_start(&mut st.epochs, start))
        };
        for base in removed {
            Segment::delete_files(&self.dir, base)?;
        }
        if epochs_moved {
            self.persist_leader_epochs().await?;
        }
        Ok(outcome)
    }

    /// Flushes everything and persists the indexes: the log can be reopened with a
    /// clean-shutdown marker after this.
    pub async fn close(&self) -> Result<(), LogError> {
        self.stop_cleaning();
        let _no_cleaning = self.cleaner.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        // After a failed write, close what did reach the page cache.
        self.repair().await?;
        let next = self.next_offset();
        self.sync_to(next).await?;
        let _permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        self.rewrite_failed_indexes().await;
        let writes = {
            let mut st = self.state.borrow_mut();
            let (_, seg) = st.segments.iter_mut().next_back().expect("active segment");
            // As Kafka's `LogSegment.close`: the time index ends with the newest timestamp.
            seg.state.seal();
            seg.take_index_writes(false)
        };
        writes.apply_synced().await?;
        let snapshot = self.state.borrow().producers.encode_snapshot();
        checkpoint::write_atomic(&self.dir, &snapshot_name(next), snapshot).await?;
        Ok(())
    }

    /// Idempotent producers this partition knows.
    pub fn producer_count(&self) -> usize {
        self.state.borrow().producers.len()
    }

    /// The first offset of the oldest open transaction, else the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.state.borrow().producers.first_unstable_offset().map_or(hw, |f| f.min(hw))
    }

    /// Aborted transactions overlapping `[from, upper)`: (producer id, first offset).
    pub fn aborted_between(&self, from: i64, upper: i64) -> Vec<(i64, i64)> {
        self.state.borrow().producers.aborted_between(from, upper)
    }

    /// Every producer this partition knows (see `ProducerStates::active`).
    pub fn active_producers(&self) -> Vec<(i64, i16, i32, i64, i64)> {
        self.state.borrow().producers.active()
    }

    /// Open transactions in this partition: (producer id, epoch, first offset).
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.state.borrow().producers.open_transactions()
    }
}

/// Kafka's `LeaderEpochFileCache.truncateFromStart`, for a log now starting at `start`: the
/// entries that begin at or below it go but the last of them, which now begins at `start`
/// (its epoch led the log's first offsets). Returns whether anything changed.
fn truncate_epochs_from_start(epochs: &mut Vec<EpochEntry>, start: i64) -> bool {
    let at_or_below = epochs.iter().take_while(|e| e.start_offset <= start).count();
    if at_or_below == 0 || (at_or_below == 1 && epochs[0].start_offset == start) {
        return false;
    }
    epochs.drain(..at_or_below - 1);
    epochs[0].start_offset = start;
    true
}

/// How a sync round failed.
enum RoundError {
    /// Writing derived data (index entries, `.txnindex`): recoverable (`write_failed`).
    Write(LogError),
    /// An fdatasync: the kernel may have dropped the pages it covered (`go_offline`).
    Sync(LogError),
}

/// fdatasync, with the test fault layer's `sync` fault (`crate::fault`).
async fn fdatasync(file: &glommio::io::BufferedFile) -> Result<(), LogError> {
    if let Some(e) = crate::fault::io_fault(crate::fault::Io::Sync) {
        return Err(LogError::io("fdatasync (injected fault)", e));
    }
    Ok(file.fdatasync().await?)
}

/// How often a partition whose write failed may try to repair itself.
const REPAIR_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Kafka's producer snapshot file name: the offset it is valid at, 20 digits.
fn snapshot_name(offset: i64) -> String {
    format!("{}.snapshot", segment::file_stem(offset))
}

/// A replicated append's first offset and the offset after its last: the leader's offsets,
/// continuing the log (at or past `log_end`) and increasing. Base offsets come from the
/// wire outside the CRC: one whose batch would end past the largest offset is refused.
fn replicated_offsets(spans: &[batch::BatchSpan], log_end: i64) -> Result<(i64, i64), LogError> {
    let mut end = log_end;
    for (i, s) in spans.iter().enumerate() {
        if s.header.base_offset < end {
            return Err(LogError::UnexpectedOffset { log_end, first: s.header.base_offset });
        }
        end = s.header.end_offset().ok_or_else(|| {
            let (base, delta) = (s.header.base_offset, s.header.last_offset_delta);
            let why = format!("batch {i} has baseOffset {base} and lastOffsetDelta {delta}, past the largest offset");
            LogError::InvalidBatch(BatchError::OffsetOverflow(why))
        })?;
    }
    Ok((spans[0].header.base_offset, end))
}

/// The log end after a leader's append of `spans` at `next_offset`, if it is an offset.
fn assigned_end(spans: &[batch::BatchSpan], next_offset: i64) -> Result<i64, LogError> {
    spans.iter().try_fold(next_offset, |end, s| end.checked_add(s.header.last_offset_delta as i64 + 1)).ok_or_else(
        || {
            let why = format!("{} batches appended at offset {next_offset} would pass the largest offset", spans.len());
            LogError::InvalidBatch(BatchError::OffsetOverflow(why))
        },
    )
}

/// The idempotence checks of one append (no state changes). `Some`: every batch is a retry
/// of one already in the log (the answer is its offsets); an error refuses the append.
fn check_sequences(
    producers: &ProducerStates,
    spans: &[batch::BatchSpan],
    next_offset: i64,
    log_start_offset: i64,
) -> Result<Option<AppendInfo>, LogError> {
    if !spans.iter().any(|s| s.header.producer_id >= 0) {
        return Ok(None);
    }
    let refuse = |code: i16, h: &BatchHeader| LogError::Sequence { code, producer_id: h.producer_id };
    if let [span] = spans {
        return match producers.check(&span.header) {
            Verdict::Append => Ok(None),
            Verdict::Duplicate { first_offset, last_offset } => Ok(Some(AppendInfo {
                first_offset,
                last_offset,
                batches: 1,
                max_timestamp: span.header.max_timestamp,
                log_start_offset,
            })),
            Verdict::Refuse(code) => Err(refuse(code, &span.header)),
        };
    }
    // Several batches in one append: each must follow the one before it.
    let mut scratch = producers.subset(spans.iter().map(|s| s.header.producer_id));
    let mut offset = next_offset;
    for span in spans {
        let header = BatchHeader { base_offset: offset, ..span.header };
        match scratch.check(&header) {
            Verdict::Append => scratch.record(&header, 0),
            Verdict::Duplicate { .. } => return Err(refuse(crate::errors::OUT_OF_ORDER_SEQUENCE_NUMBER, &header)),
            Verdict::Refuse(code) => return Err(refuse(code, &header)),
        }
        offset = header.last_offset() + 1;
    }
    Ok(None)
}

fn txn_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}.txnindex", segment::file_stem(base)))
}

/// Appends aborted transactions to a segment's `.txnindex` and fdatasyncs it (io_uring).
async fn append_txn_entries(dir: &Path, base: i64, entries: &[&producer::AbortedTxn]) -> Result<(), LogError> {
    if entries.is_empty() {
        return Ok(());
    }
    let path = txn_index_path(dir, base);
    let file = glommio::io::OpenOptions::new().write(true).create(true).buffered_open(&path).await?;
    let end = file.file_size().await?;
    let bytes: Vec<u8> = entries.iter().flat_map(|a| a.encode()).collect();
    let written = async {
        segment::write_fully(&file, bytes, end).await?;
        file.fdatasync().await?;
        Ok::<(), LogError>(())
    }
    .await;
    file.close().await?;
    written
}

/// Rewrites every `.txnindex` from the aborted transactions (each in the segment holding
/// its marker), at open and after a truncation (plain writes: the files are trusted only
/// after a clean shutdown, whose close syncs them).
fn rewrite_txn_indexes(dir: &Path, bases: &[i64], aborted: &[producer::AbortedTxn]) -> Result<(), LogError> {
    use std::io::Write;
    for &base in bases {
        let path = txn_index_path(dir, base);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io(format!("removing {}", path.display()), e))
            }
            _ => {}
        }
    }
    for a in aborted {
        if let Some(&base) = bases.iter().rev().find(|b| **b <= a.last_offset) {
            let path = txn_index_path(dir, base);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&a.encode()))
                .map_err(|e| LogError::io(format!("writing {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// Removes every producer snapshot (`<offset>.snapshot`) in `dir`.
fn remove_snapshots(dir: &Path) -> Result<(), LogError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".snapshot") {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io(format!("removing {}", entry.path().display()), e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Producer state at open: from a snapshot written by a clean close at exactly this log
/// end, else rebuilt from every batch header in the log. Snapshots are removed once read:
/// the next clean close writes a fresh one.
async fn load_producers(
    dir: &Path,
    segments: &BTreeMap<i64, Segment>,
    log_start_offset: i64,
    next_offset: i64,
) -> Result<ProducerStates, LogError> {
    let now = crate::runtime::now_ms();
    let mut loaded = None;
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(offset) = name.strip_suffix(".snapshot").and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        if offset == next_offset && loaded.is_none() {
            let bytes = std::fs::read(entry.path()).map_err(|e| LogError::io(format!("reading {name}"), e))?;
            loaded = ProducerStates::decode_snapshot(&bytes, now);
        }
        let _ = std::fs::remove_file(entry.path());
    }
    let bases: Vec<i64> = segments.keys().copied().collect();
    match loaded {
        Some(mut p) => {
            for &base in &bases {
                if let Ok(bytes) = std::fs::read(txn_index_path(dir, base)) {
                    p.aborted.extend(producer::AbortedTxn::decode_all(&bytes));
                }
            }
            p.forget_aborted_below(log_start_offset);
            Ok(p)
        }
        None => {
            let p = scan_producers(segments, log_start_offset, now).await?;
            rewrite_txn_indexes(dir, &bases, &p.aborted)?;
            Ok(p)
        }
    }
}

/// Rebuilds producer state from the batch headers of every segment (batches below `from`
/// are skipped), reading the log sequentially in large chunks.
fn scan_producers(
    segments: &BTreeMap<i64, Segment>,
    from: i64,
    now_ms: i64,
) -> impl std::future::Future<Output = Result<ProducerStates, LogError>> {
    let files: Vec<(Rc<SegmentFile>, u64)> = segments.values().map(|s| (s.log.clone(), s.state.size)).collect();
    async move {
        const CHUNK: usize = 1 << 20;
        let mut producers = ProducerStates::default();
        for (file, size) in files {
            let mut pos = 0u64;
            while pos + crate::limits::BATCH_HEADER_BYTES as u64 <= size {
                let len = CHUNK.min((size - pos) as usize);
                let buf = file.read_range(pos, len).await?;
                let mut p = 0usize;
                while let Some(h) = buf.get(p..).and_then(BatchHeader::read) {
                    let size = h.size_bytes().max(crate::limits::BATCH_HEADER_BYTES);
                    if h.is_control() && p + size > buf.len() && p > 0 {
                        break; // read the marker's record with the next chunk
                    }
                    if h.base_offset >= from {
                        producers.record(&h, now_ms);
                        if h.is_control() {
                            let commit =
                                buf.get(p..p + size).and_then(batch::control_type) == Some(batch::CONTROL_COMMIT);
                            producers.marker(&h, commit, now_ms);
                        }
                    }
                    p += size;
                }
                if p == 0 {
                    break;
                }
                pos += p as u64;
            }
        }
        Ok(producers)
    }
}

/// Finds (or extends) the queued write that `len` more bytes at `position` of `file` join:
/// contiguous runs for the same file become one write, up to the coalescing bound.
fn queue_buffer<'q>(
    queue: &'q mut VecDeque<QueuedWrite>,
    file: &Rc<SegmentFile>,
    base: i64,
    position: u64,
    len: usize,
) -> &'q mut QueuedWrite {
    let joins = queue.back().is_some_and(|last| {
        last.segment_base == base
            && last.position + last.len as u64 == position
            && last.len + len <= crate::limits::COALESCED_WRITE_BYTES_MAX
    });
    if !joins {
        queue.push_back(QueuedWrite {
            file: file.clone(),
            segment_base: base,
            position,
            pieces: Vec::new(),
            len: 0,
            end_offset: 0,
        });
    }
    queue.back_mut().expect("queued")
}

/// Walks whole batches from `skip` (an index position at or after `position`) up to
/// `limit`. When the walk from `skip` cannot tell where the next read starts (no batch at
/// `skip` fits and none follows), it walks again from `position`.
async fn walk_or_fallback(file: &SegmentFile, position: u64, skip: u64, limit: u64) -> Result<(u64, i64), LogError> {
    let (stop, last) = file.walk_to(skip, limit).await?;
    if let Some(last) = last {
        return Ok((stop, last.last_offset() + 1));
    }
    if skip > position {
        if let Some(next) = file.read_header_at(skip, u64::MAX).await? {
            return Ok((skip, next.base_offset));
        }
        let (stop, last) = file.walk_to(position, limit).await?;
        return Ok((stop, last.map_or(0, |h| h.last_offset() + 1)));
    }
    Ok((stop, 0))
}

/// Decodes one stored batch (any codec) and returns the first record at or after
/// `timestamp` with an offset at or past `min_offset`.
fn first_record_at_or_after(bytes: Vec<u8>, timestamp: i64, min_offset: i64) -> Result<Option<(i64, i64)>, LogError> {
    let mut buf = bytes::Bytes::from(bytes);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
        .map_err(|e| LogError::Corrupt(format!("undecodable stored batch: {e}")))?;
    Ok(set.records.iter().find(|r| r.timestamp >= timestamp && r.offset >= min_offset).map(|r| (r.offset, r.timestamp)))
}

async fn sync_dir(dir: &Path) -> Result<(), LogError> {
    let directory = Directory::open(dir).await?;
    directory.sync().await?;
    directory.close().await?;
    Ok(())
}

/// Lists the base offsets of the segments in `dir`, oldest first, removing leftovers no
/// recovery needs: temp files of interrupted checkpoint writes, and index files whose
/// `.log` is gone (they are rebuilt if the log reappears).
fn discover_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        match segment::parse_file_name(&name) {
            Some((base, "log")) => logs.push(base),
            Some((base, "index" | "timeindex")) => indexes.push((base, entry.path())),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `truncateFromStart`, case by case: below the first entry and at its start
    /// nothing changes; past it the entries wholly below go and the last at or below the new
    /// start begins there; at an entry's start that entry is the first left.
    #[test]
    fn leader_epochs_are_truncated_from_the_start_as_kafka_does() {
        let cache = |pairs: &[(i32, i64)]| -> Vec<EpochEntry> {
            pairs.iter().map(|&(epoch, start_offset)| EpochEntry { epoch, start_offset }).collect()
        };
        let cases: [(i64, &[(i32, i64)], bool); 6] = [
            (3, &[(0, 5), (1, 10), (2, 20)], false),
            (5, &[(0, 5), (1, 10), (2, 20)], false),
            (7, &[(0, 7), (1, 10), (2, 20)], true),
            (15, &[(1, 15), (2, 20)], true),
            (20, &[(2, 20)], true),
            (99, &[(2, 99)], true),
        ];
        for (start, want, changed) in cases {
            let mut epochs = cache(&[(0, 5), (1, 10), (2, 20)]);
            assert_eq!(truncate_epochs_from_start(&mut epochs, start), changed, "start {start}");
            assert_eq!(epochs, cache(want), "start {start}");
        }
        let mut none = Vec::new();
        assert!(!truncate_epochs_from_start(&mut none, 10));
    }
}
