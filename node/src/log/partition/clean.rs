//! Cleaning one partition log (`cleanup.policy` holds `compact`), as Kafka's `LogCleaner`
//! does, with the record rules of `log::compaction`.
//!
//! What is cleaned: the closed segments below the first uncleanable offset — the active
//! segment's base, the last stable offset (open transactions are never cleaned), and the
//! first segment younger than `min.compaction.lag.ms`. The part above the cleaner
//! checkpoint (`cleaner-offset-checkpoint` in the partition directory; Kafka keeps one per
//! data directory) is dirty. A log is due when dirty bytes are at least
//! `min.cleanable.dirty.ratio` of the cleanable bytes, or its oldest dirty record is older
//! than `max.compaction.lag.ms`.
//!
//! How: a key map (key → latest offset) is built from the dirty segments, as many as fit the
//! memory budget (whole segments only); then every segment from the log start to the map's
//! end is copied, in groups whose inputs together fit one segment (so small cleaned segments
//! are merged), keeping what the rules keep. Offsets never change.
//!
//! Crash safety, as Kafka's `.cleaned` / `.swap` files: a group is written to
//! `<base>.log.cleaned` and fdatasynced; renaming it to `<base>.log.swap` (directory
//! fsynced) is the commit point. Then the group's old files are removed (the first
//! segment's indexes first) and the swap file is renamed to `<base>.log`; its indexes are
//! rebuilt from it. Opening a log finishes what a crash interrupted
//! ([`finish_interrupted`]): `.cleaned` files are deleted (the old segments are intact), a
//! `.swap` file replaces every segment its offsets cover, and the producer snapshots go (the
//! producer state is then rebuilt from the log). Readers holding an old segment's file keep
//! reading it: an unlinked file lives until its last descriptor closes.
//!
//! Concurrency: neither the copy nor the file swap holds the log's `structure` permit, so
//! appends, rolls and syncs go on (a roll waits for the permit: holding it through a
//! directory fsync stalled produce by tens of ms under load). The permit is taken twice,
//! briefly: to check the group's segments are all still there (retention or DeleteRecords
//! may have removed some: the group is then abandoned) and mark them as being swapped
//! (retention and truncation leave them alone meanwhile), and to put the new segment in
//! their place. Readers meanwhile keep reading the old files through their descriptors.
//! The cleaner gives way to request handling every 0.5 ms of work ([`SLICE`]). `close` stops a cleaning between
//! chunks and waits for it (`cleaner` permit).

use super::super::batch::{self, BatchHeader, Check};
use super::super::compaction::{self, Aborted, Kept, OffsetMap, PassState, Rules};
use super::super::error::LogError;
use super::super::segment::{self, Segment, SegmentFile, SegmentState};
use super::{append_txn_entries, sync_dir, txn_index_path, PartitionLog};
use crate::limits::BATCH_HEADER_BYTES;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

/// The cleaner checkpoint: the first dirty offset (one decimal line), in the partition
/// directory.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The first dirty offset recorded in `dir`, 0 when none is.
pub fn read_checkpoint(dir: &Path) -> i64 {
    std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// Bytes read (and written) per step; the cleaner yields to the shard between steps.
const CHUNK_BYTES: usize = 1 << 20;

/// Work the cleaner does between breaks: then it leaves its task queue empty for a moment, so
/// the shard polls its sockets and runs request handlers. (Yielding alone only changes task
/// queues when glommio's preemption timer fires, every 10 ms: a request arriving meanwhile
/// would wait for the rest of that slice.)
const SLICE: std::time::Duration = std::time::Duration::from_micros(500);

/// Gives the shard's request handling its turn every [`SLICE`] of cleaning.
struct Pacer(Instant);

impl Pacer {
    fn new() -> Pacer {
        Pacer(Instant::now())
    }

    async fn tick(&mut self) {
        if self.0.elapsed() >= SLICE {
            glommio::timer::sleep(std::time::Duration::from_micros(1)).await;
            self.0 = Instant::now();
        }
    }
}

/// What a log's cleaning would cover now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// Dirty bytes / cleanable bytes.
    pub dirty_ratio: f64,
    /// Due: the ratio reached `min.cleanable.dirty.ratio`, or `max.compaction.lag.ms` passed.
    pub due: bool,
}

/// What one cleaning did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub batches_dropped: u64,
    pub batches_rewritten: u64,
    pub keys: usize,
    /// The new first dirty offset.
    pub cleaned_upto: i64,
    pub elapsed_ms: u64,
}

/// One closed segment as the cleaner sees it.
#[derive(Debug, Clone)]
struct Closed {
    base: i64,
    next_base: i64,
    file: Rc<SegmentFile>,
    size: u64,
    /// The first batch's timestamp where known, else the newest (for `max.compaction.lag.ms`).
    first_timestamp: i64,
}

impl PartitionLog {
    /// The first dirty offset (everything below was cleaned at least once).
    pub fn cleaned_upto(&self) -> i64 {
        self.state.borrow().cleaned_upto.max(self.log_start_offset())
    }

    /// A truncation to `end`: the cleaner checkpoint comes down to it if it was above (Kafka's
    /// `maybeTruncateCheckpoint`), else offsets appended again below it would count as
    /// cleaned and never be cleaned.
    pub(super) async fn lower_cleaned_upto(&self, end: i64) -> Result<(), LogError> {
        if self.state.borrow().cleaned_upto <= end {
            return Ok(());
        }
        self.state.borrow_mut().cleaned_upto = end;
        self.persist_cleaned_upto().await
    }

    /// Writes the cleaner checkpoint in force now. One write at a time, each of the value
    /// when it starts: the last one leaves the latest value, whichever finished first.
    async fn persist_cleaned_upto(&self) -> Result<(), LogError> {
        let _one = self.cleaner_checkpoint.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        let text = format!("{}\n", self.state.borrow().cleaned_upto);
        super::checkpoint::write_atomic(&self.dir, CLEANER_CHECKPOINT_FILE, text.into_bytes()).await
    }

    /// Closed segments, oldest first, below the first uncleanable offset.
    fn cleanable_segments(&self, now_ms: i64) -> Vec<Closed> {
        let config = self.config();
        let lso = self.last_stable_offset();
        let st = self.state.borrow();
        let bases: Vec<i64> = st.segments.keys().copied().collect();
        let mut out = Vec::new();
        for pair in bases.windows(2) {
            let (base, next_base) = (pair[0], pair[1]);
            let seg = &st.segments[&base];
            let too_young = config.min_compaction_lag_ms > 0
                && seg.state.max_timestamp >= 0
                && now_ms.saturating_sub(seg.state.max_timestamp) < config.min_compaction_lag_ms;
            if next_base > lso || too_young {
                break;
            }
            out.push(Closed {
                base,
                next_base,
                file: seg.log.clone(),
                size: seg.written,
                first_timestamp: seg.state.first_timestamp().unwrap_or(seg.state.max_timestamp),
            });
        }
        out
    }

    /// Whether (and how much) this log needs cleaning now; `None` when it is not compacted,
    /// offline, or has nothing dirty.
    pub fn cleanable(&self, now_ms: i64) -> Option<Cleanable> {
        let config = self.config();
        if !config.cleanup_compact || self.state.borrow().offline {
            return None;
        }
        let segments = self.cleanable_segments(now_ms);
        let dirty_start = self.cleaned_upto();
        let (mut clean, mut dirty) = (0u64, 0u64);
        let mut oldest_dirty = None;
        for s in &segments {
            if s.next_base <= dirty_start {
                clean += s.size;
            } else {
                dirty += s.size;
                oldest_dirty.get_or_insert(s.first_timestamp);
            }
        }
        if dirty == 0 {
            return None;
        }
        let dirty_ratio = dirty as f64 / (clean + dirty) as f64;
        let overdue = oldest_dirty.is_some_and(|t| t >= 0 && now_ms.saturating_sub(t) > config.max_compaction_lag_ms);
        Some(Cleanable { dirty_ratio, due: dirty_ratio >= config.min_cleanable_dirty_ratio || overdue })
    }

    /// Stops a cleaning under way at its next step (the log is closing or being deleted).
    pub fn stop_cleaning(&self) {
        self.clean_abort.set(true);
    }

    /// Whether `stop_cleaning` (or `close`) was called.
    pub fn cleaning_stopped(&self) -> bool {
        self.clean_abort.get()
    }

    /// Cleans the log if it is due (see the module doc). `map_budget` bounds the key map's
    /// memory. Returns what was done, `None` if nothing was due.
    pub async fn clean(self: &Rc<Self>, now_ms: i64, map_budget: usize) -> Result<Option<CleanStats>, LogError> {
        let Ok(_cleaning) = self.cleaner.try_acquire_permit(1) else {
            return Ok(None); // another cleaning of this log is under way
        };
        if self.clean_abort.get() || !self.cleanable(now_ms).is_some_and(|c| c.due) {
            return Ok(None);
        }
        let started = Instant::now();
        let truncations = self.state.borrow().truncations;
        let segments = self.cleanable_segments(now_ms);
        let dirty_start = self.cleaned_upto();
        let aborted = Aborted::new(&self.state.borrow().producers.aborted);
        let mut stats = CleanStats { segments_before: self.segment_count(), ..CleanStats::default() };

        // The key map, from whole dirty segments while they fit: before each segment (after
        // the first, which is always taken) its worst case — one new key per offset, of the
        // average key length so far — must fit the budget (Kafka reserves by offsets too).
        let mut pacer = Pacer::new();
        let mut map = OffsetMap::default();
        let mut map_end = dirty_start;
        for s in segments.iter().filter(|s| s.next_base > dirty_start) {
            let worst = OffsetMap::estimate(s.next_base - s.base, map.average_key_len());
            if !map.is_empty() && map.bytes().saturating_add(worst) > map_budget {
                break;
            }
            let mut reader = BatchReader::new(&s.file, s.size);
            while let Some(chunk) = reader.next().await? {
                for (at, header) in &chunk.batches {
                    let bytes = &chunk.bytes[*at..*at + header.size_bytes()];
                    for (key, offset) in compaction::batch_keys(bytes, header, &aborted).map_err(|e| corrupt(s, e))? {
                        map.put(&key, offset);
                    }
                    pacer.tick().await;
                }
                stats.bytes_read += chunk.bytes.len() as u64;
                self.check_abort()?;
            }
            map_end = s.next_base;
        }
        stats.keys = map.len();
        if map_end <= dirty_start {
            return Ok(None);
        }

        // Copy every segment below the map's end, group by group.
        let config = self.config();
        let last_batch_of = self.state.borrow().producers.last_batch_offsets();
        let rules = Rules {
            map: &map,
            aborted: &aborted,
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            last_batch_of: &last_batch_of,
        };
        let mut pass = PassState::default();
        let to_clean: Vec<Closed> = segments.into_iter().filter(|s| s.next_base <= map_end).collect();
        for group in
            group_by_size(&to_clean, config.segment_bytes, config.segment_index_bytes, config.index_interval_bytes)
        {
            let written = self.clean_group(group, &rules, &mut pass, &mut stats, truncations).await?;
            if !written {
                // The log changed under us (retention, DeleteRecords, a truncation): what was
                // swapped stays swapped; the rest waits for the next cleaning.
                stats.cleaned_upto = self.cleaned_upto();
                stats.segments_after = self.segment_count();
                stats.elapsed_ms = started.elapsed().as_millis() as u64;
                return Ok(Some(stats));
            }
        }
        // The last group found no truncation since the start, and none came after: they wait
        // for `swap_pending` during its swap, and there is no await between it and here.
        self.state.borrow_mut().cleaned_upto = map_end;
        self.persist_cleaned_upto().await?;
        stats.cleaned_upto = map_end;
        stats.segments_after = self.segment_count();
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(Some(stats))
    }

    fn check_abort(&self) -> Result<(), LogError> {
        if self.clean_abort.get() {
            return Err(LogError::Offline);
        }
        Ok(())
    }

    /// Writes one group's cleaned segment and swaps it in. `false`: the group's segments
    /// changed meanwhile, nothing was swapped.
    async fn clean_group(
        &self,
        group: &[Closed],
        rules: &Rules<'_>,
        pass: &mut PassState,
        stats: &mut CleanStats,
        truncations: u64,
    ) -> Result<bool, LogError> {
        let base = group[0].base;
        let next_base = group[group.len() - 1].next_base;
        let stem = segment::file_stem(base);
        let cleaned_path = self.dir.join(format!("{stem}.log.cleaned"));
        let state = match self.write_cleaned(group, &cleaned_path, rules, pass, stats).await {
            Ok(state) => state,
            Err(e) => {
                let _ = std::fs::remove_file(&cleaned_path);
                return Err(e);
            }
        };
        // Under `structure`, briefly: are the group's segments still all there? Then mark them
        // as being swapped, so retention and truncation leave them alone meanwhile. Nothing
        // slow is done holding it (rolls, hence appends, wait for it).
        {
            let _permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
            let mut st = self.state.borrow_mut();
            // A truncation keeps the segment it cuts (same file, shorter): the copy holds
            // batches it removed.
            let unchanged = st.truncations == truncations
                && group.iter().all(|c| st.segments.get(&c.base).is_some_and(|s| Rc::ptr_eq(&s.log, &c.file)));
            if !unchanged || self.clean_abort.get() || st.offline {
                let _ = std::fs::remove_file(&cleaned_path);
                return Ok(false);
            }
            st.swap_pending = Some((base, next_base));
        }
        let swap_path = self.dir.join(format!("{stem}.log.swap"));
        let mut committed = false;
        let swapped = self.swap_files(group, base, next_base, state, &cleaned_path, &swap_path, &mut committed).await;
        let _permit = self.structure.acquire_permit(1).await.map_err(|_| LogError::Offline)?;
        let mut st = self.state.borrow_mut();
        st.swap_pending = None;
        match swapped {
            Ok(seg) => {
                for c in group {
                    st.segments.remove(&c.base);
                }
                // Their `.txnindex` entries are in the new segment's already.
                st.txn_pending.retain(|(b, _)| !group.iter().any(|c| c.base == *b));
                // Its data was fdatasynced before the commit; its indexes go with the next
                // sync round, as a rolled segment's do.
                st.closed_unsynced.push((seg.log.clone(), seg.index_files.clone()));
                st.segments.insert(base, seg);
                st.dir_dirty = true;
                Ok(true)
            }
            Err(e) => {
                drop(st);
                if committed {
                    // The files no longer match the in-memory log: offline until reopened,
                    // which finishes the swap.
                    self.go_offline(&e);
                } else {
                    let _ = std::fs::remove_file(&cleaned_path);
                }
                Err(e)
            }
        }
    }

    /// Copies the group's surviving batches into `path`, fdatasynced; returns what the new
    /// segment holds (its indexes, timestamps and size), worked out as the batches go by.
    async fn write_cleaned(
        &self,
        group: &[Closed],
        path: &Path,
        rules: &Rules<'_>,
        pass: &mut PassState,
        stats: &mut CleanStats,
    ) -> Result<SegmentState, LogError> {
        let config = self.config();
        let mut state = SegmentState::empty(group[0].base, &config);
        let out = glommio::io::OpenOptions::new().write(true).create(true).truncate(true).buffered_open(path).await?;
        let mut position = 0u64;
        let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
        let mut pacer = Pacer::new();
        for s in group {
            let mut reader = BatchReader::new(&s.file, s.size);
            while let Some(chunk) = reader.next().await? {
                stats.bytes_read += chunk.bytes.len() as u64;
                for (at, header) in &chunk.batches {
                    let bytes = &chunk.bytes[*at..*at + header.size_bytes()];
                    let kept = compaction::clean_batch(bytes, header, rules, pass).map_err(|e| corrupt(s, e))?;
                    let at = position + buffer.len() as u64;
                    match kept {
                        Kept::Whole => {
                            buffer.extend_from_slice(bytes);
                            state.account_batch(header, at, &config);
                        }
                        Kept::Rewritten(b) => {
                            stats.batches_rewritten += 1;
                            let h =
                                BatchHeader::read(&b).ok_or_else(|| corrupt(s, "a rewritten batch lost its header"))?;
                            buffer.extend_from_slice(&b);
                            state.account_batch(&h, at, &config);
                        }
                        Kept::Dropped => stats.batches_dropped += 1,
                    }
                    pacer.tick().await;
                }
                if buffer.len() >= CHUNK_BYTES {
                    let full = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK_BYTES));
                    let len = full.len() as u64;
                    segment::write_fully(&out, full, position).await?;
                    start_writeback(&out, position, len);
                    position += len;
                }
                self.check_abort()?;
            }
        }
        if !buffer.is_empty() {
            let len = buffer.len() as u64;
            segment::write_fully(&out, buffer, position).await?;
            position += len;
        }
        stats.bytes_written += position;
        out.fdatasync().await?;
        out.close().await?;
        state.seal();
        Ok(state)
    }

    /// The commit and the file swap, without `structure` (the group is marked pending):
    /// `.cleaned` → `.swap`, the directory fsynced (the commit is durable), the old files
    /// out, the swap file renamed into place, its indexes written from `state`.
    #[allow(clippy::too_many_arguments)]
    async fn swap_files(
        &self,
        group: &[Closed],
        base: i64,
        next_base: i64,
        mut state: SegmentState,
        cleaned_path: &Path,
        swap_path: &Path,
        committed: &mut bool,
    ) -> Result<Segment, LogError> {
        std::fs::rename(cleaned_path, swap_path)
            .map_err(|e| LogError::io(format!("renaming {}", cleaned_path.display()), e))?;
        *committed = true;
        sync_dir(&self.dir).await?;
        replace_with_swap(&self.dir, base, group.iter().map(|c| c.base), swap_path)?;
        state.next_offset = next_base;
        let mut seg = Segment::adopt(&self.dir, base, state).await?;
        seg.take_index_writes(true).apply().await?;
        // Aborted transactions whose markers lie in the new segment: its `.txnindex`.
        let aborted: Vec<_> = {
            let st = self.state.borrow();
            st.producers
                .aborted
                .iter()
                .filter(|a| a.last_offset >= base && a.last_offset < next_base)
                .cloned()
                .collect()
        };
        append_txn_entries(&self.dir, base, &aborted.iter().collect::<Vec<_>>()).await?;
        Ok(seg)
    }
}

/// Starts writeback of a chunk just written (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`:
/// submits, does not wait), so the fdatasync before the commit finds little left to write.
/// That writeback runs in an io_uring worker on the shard's own core, where a burst of it
/// holds request handling back for milliseconds; in 1 MiB steps here it does not.
fn start_writeback(file: &glommio::io::BufferedFile, position: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor; a failure only leaves the work to the
    // fdatasync that follows.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            position as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

fn corrupt(s: &Closed, e: impl std::fmt::Debug) -> LogError {
    LogError::Corrupt(format!("{}: {e:?}", s.file.path.display()))
}

/// Consecutive segments whose inputs together fit one segment: `segment.bytes`, the index
/// size, and offsets relative to the first base that fit in 32 bits (Kafka's
/// `groupSegmentsBySize`).
fn group_by_size(segments: &[Closed], segment_bytes: u64, index_bytes: u64, index_interval: u64) -> Vec<&[Closed]> {
    let max_index_entries = (index_bytes / 8).max(1);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        let mut size = segments[start].size;
        while end < segments.len() {
            let next = &segments[end];
            let fits = size + next.size <= segment_bytes
                && (size + next.size) / index_interval.max(1) < max_index_entries
                && next.next_base - 1 - segments[start].base <= i32::MAX as i64;
            if !fits {
                break;
            }
            size += next.size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// Removes the group's old files and renames the swap file into place (see the module doc
/// for the order and why it is safe at every step).
fn replace_with_swap(
    dir: &Path,
    base: i64,
    group: impl Iterator<Item = i64>,
    swap_path: &Path,
) -> Result<(), LogError> {
    let stem = segment::file_stem(base);
    for name in [format!("{stem}.index"), format!("{stem}.timeindex")] {
        remove_if_present(&dir.join(name))?;
    }
    remove_if_present(&txn_index_path(dir, base))?;
    for old in group.filter(|b| *b != base) {
        Segment::delete_files(dir, old)?;
    }
    let target = dir.join(format!("{stem}.log"));
    std::fs::rename(swap_path, &target).map_err(|e| LogError::io(format!("renaming {}", swap_path.display()), e))
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(format!("removing {}", path.display()), e)),
    }
}

/// At open, before the segments are listed: finishes or undoes a cleaning a crash cut short.
/// `.cleaned` files are removed; each `.swap` file replaces the segments whose base offsets
/// it covers (from its base to its last batch), and the producer snapshots are removed so
/// the producer state is rebuilt from the log.
pub fn finish_interrupted(dir: &Path) -> Result<(), LogError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let mut swapped = false;
    for name in &names {
        if name.ends_with(".cleaned") {
            eprintln!("sluice: {}: undoing a cleaning cut short before its commit ({name})", dir.display());
            remove_if_present(&dir.join(name))?;
        }
    }
    for name in &names {
        let Some(stem) = name.strip_suffix(".log.swap") else { continue };
        let Some((base, _)) = segment::parse_file_name(&format!("{stem}.log")) else { continue };
        let swap_path = dir.join(name);
        let last = last_offset_in(&swap_path)?.unwrap_or(base);
        let covered: Vec<i64> = names
            .iter()
            .filter_map(|n| segment::parse_file_name(n))
            .filter(|(b, ext)| *ext == "log" && *b >= base && *b <= last)
            .map(|(b, _)| b)
            .collect();
        eprintln!("sluice: {}: finishing a cleaning cut short after its commit ({name})", dir.display());
        replace_with_swap(dir, base, covered.into_iter(), &swap_path)?;
        swapped = true;
    }
    if swapped {
        for name in &names {
            if name.ends_with(".snapshot") {
                remove_if_present(&dir.join(name))?;
            }
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LogError::io(format!("syncing {}", dir.display()), e))?;
    }
    Ok(())
}

/// The last offset of the last whole batch in a segment file (headers only).
fn last_offset_in(path: &Path) -> Result<Option<i64>, LogError> {
    let file = std::fs::File::open(path).map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
    let size = file.metadata().map_err(|e| LogError::io(format!("stat {}", path.display()), e))?.len();
    let mut position = 0u64;
    let mut last = None;
    let mut head = [0u8; BATCH_HEADER_BYTES];
    while position + BATCH_HEADER_BYTES as u64 <= size {
        file.read_exact_at(&mut head, position).map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
        let Some(h) = BatchHeader::read(&head) else { break };
        if h.batch_length <= 0 || position + h.size_bytes() as u64 > size {
            break;
        }
        last = Some(h.last_offset());
        position += h.size_bytes() as u64;
    }
    Ok(last)
}

/// Whole batches of a segment, a chunk at a time, each checked as recovery checks it.
struct BatchReader<'a> {
    file: &'a SegmentFile,
    size: u64,
    position: u64,
}

struct Chunk {
    bytes: Vec<u8>,
    /// (position in `bytes`, header) of each whole batch in it.
    batches: Vec<(usize, BatchHeader)>,
}

impl<'a> BatchReader<'a> {
    fn new(file: &'a SegmentFile, size: u64) -> BatchReader<'a> {
        BatchReader { file, size, position: 0 }
    }

    async fn next(&mut self) -> Result<Option<Chunk>, LogError> {
        if self.position >= self.size {
            return Ok(None);
        }
        let want = CHUNK_BYTES.min((self.size - self.position) as usize);
        let mut bytes = self.file.read_range(self.position, want).await?;
        let mut batches = Vec::new();
        let mut at = 0usize;
        while let Some(h) = bytes.get(at..).and_then(BatchHeader::read) {
            if h.batch_length <= 0 || at + h.size_bytes() > bytes.len() {
                break;
            }
            batches.push((at, h));
            at += h.size_bytes();
        }
        if batches.is_empty() {
            // One batch larger than a chunk: read it whole.
            let header = self.file.read_header_at(self.position, self.size).await?.ok_or_else(|| {
                LogError::Corrupt(format!("{}: no whole batch at byte {}", self.file.path.display(), self.position))
            })?;
            bytes = self.file.read_range(self.position, header.size_bytes()).await?;
            batches.push((0, header));
            at = header.size_bytes();
        }
        for (p, h) in &mut batches {
            let position = (self.position + *p as u64) as usize;
            *h = batch::validate(&bytes[*p..*p + h.size_bytes()], position, Check::Stored)
                .map_err(|e| LogError::Corrupt(format!("{}: {e}", self.file.path.display())))?;
        }
        bytes.truncate(at);
        self.position += at as u64;
        glommio::yield_if_needed().await;
        Ok(Some(Chunk { bytes, batches }))
    }
}
