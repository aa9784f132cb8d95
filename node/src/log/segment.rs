//! One log segment: `<base offset, 20 digits>.log` with its `.index` and `.timeindex`.
//!
//! Format: the `.log` is record batches (magic v2) back to back, exactly as Kafka writes
//! them; the indexes are described in `index.rs`. A segment's base offset is the first
//! offset it may hold; the name of all three files.
//!
//! Ownership: a segment belongs to its partition's log, hence to one shard; only that
//! shard calls anything here. Readers on other shards receive a [`SegmentFile`] lease
//! (an `Rc`, released on the owning shard) plus a byte range; the bytes in a range never
//! change while the range is below the log end, because the file is append-only.
//!
//! What is in memory vs on disk: `size` and `next_offset` count bytes *assigned* to the
//! segment, including a coalesced write that is still in flight; the partition log bounds
//! every read by what has actually been written. Index entries are kept in memory and
//! appended to their files when the log syncs, rolls or closes; recovery rebuilds them
//! from the `.log` whenever they are missing, damaged or possibly stale.

use super::batch::{self, BatchHeader, Check, BATCH_LOG_OVERHEAD};
use super::config::LogConfig;
use super::error::LogError;
use super::index::{OffsetIndex, TimeIndex};
use crate::limits::{
    BATCH_HEADER_BYTES, IOVECS_PER_CALL_MAX, OFFSET_INDEX_ENTRY_BYTES, PWRITEV_CALL_BYTES_MAX,
    RECOVERY_READ_CHUNK_BYTES, TIME_INDEX_ENTRY_BYTES,
};
use bytes::Bytes;
use glommio::io::{BufferedFile, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The largest offset a segment may hold past its base: Kafka's indexes store offsets as
/// 32-bit signed deltas from the base (`LogSegment.canConvertToRelativeOffset`).
pub const RELATIVE_OFFSET_MAX: i64 = i32::MAX as i64;

/// The `.log` file of a segment, shared by reference with readers (fetch ranges).
#[derive(Debug)]
pub struct SegmentFile {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: BufferedFile,
}

/// The file name stem for a base offset: Kafka's 20-digit zero-padded form.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// The base offset encoded in a segment file name, if the name is one.
pub fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Where in the segment a batch sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    pub position: u64,
    pub header: BatchHeader,
}

impl SegmentFile {
    /// When the file was last written (its mtime), in ms since the epoch: Kafka's
    /// `LogSegment.lastModified`, by which ListOffsets v0 answers. Read from the open file,
    /// so a segment deleted meanwhile still answers.
    pub fn last_modified_ms(&self) -> Result<i64, LogError> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor stays open while `self` lives; on success fstat has
        // written the whole struct.
        let stat = unsafe {
            if libc::fstat(self.file.as_raw_fd(), stat.as_mut_ptr()) != 0 {
                let context = format!("fstat {}", self.path.display());
                return Err(LogError::io(context, std::io::Error::last_os_error()));
            }
            stat.assume_init()
        };
        Ok(stat.st_mtime.saturating_mul(1000).saturating_add(stat.st_mtime_nsec / 1_000_000))
    }

    /// Reads the header of the batch at `position`, or `None` when no whole header lies
    /// before `end` or the length field cannot be a batch's.
    pub async fn read_header_at(&self, position: u64, end: u64) -> Result<Option<BatchHeader>, LogError> {
        if position + BATCH_HEADER_BYTES as u64 > end {
            return Ok(None);
        }
        let bytes = self.file.read_at(position, BATCH_HEADER_BYTES).await?;
        let min_length = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) as i32;
        Ok(BatchHeader::read(&bytes)
            .filter(|h| h.batch_length >= min_length && position + h.size_bytes() as u64 <= end))
    }

    /// The first batch at or after `start` (a batch boundary) whose last offset is at or past
    /// `offset`; `None` when there is none before `end`.
    pub async fn find_batch(&self, start: u64, offset: i64, end: u64) -> Result<Option<BatchLocation>, LogError> {
        let mut position = start;
        while let Some(header) = self.read_header_at(position, end).await? {
            if header.last_offset() >= offset {
                return Ok(Some(BatchLocation { position, header }));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Walks whole batches from `from` (a batch boundary) while they end at or below `limit`.
    /// Returns the position after the last such batch and that batch's header.
    pub async fn walk_to(&self, from: u64, limit: u64) -> Result<(u64, Option<BatchHeader>), LogError> {
        let mut position = from;
        let mut last = None;
        while let Some(header) = self.read_header_at(position, limit).await? {
            position += header.size_bytes() as u64;
            last = Some(header);
        }
        Ok((position, last))
    }

    /// Reads the bytes of one range (the copying read path).
    pub async fn read_range(&self, position: u64, length: usize) -> Result<Vec<u8>, LogError> {
        let bytes = self.file.read_at(position, length).await?;
        if bytes.len() != length {
            return Err(LogError::Corrupt(format!(
                "{}: wanted {length} bytes at {position}, read {}",
                self.path.display(),
                bytes.len()
            )));
        }
        Ok(bytes.to_vec())
    }
}

/// What the log keeps in memory about a segment's contents: rebuilt by scanning the file,
/// updated by every append.
#[derive(Debug, Clone)]
pub struct SegmentState {
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Bytes assigned to the segment (written, or queued for the in-flight write).
    pub size: u64,
    /// The offset after the last batch assigned to the segment.
    pub next_offset: i64,
    /// Bytes appended since the last offset-index entry (Kafka's `bytesSinceLastIndexEntry`).
    bytes_since_index: u64,
    /// Largest batch maxTimestamp so far and the last offset of that batch.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// The max timestamp of the segment's first batch: `segment.ms` counts from it.
    rolling_base_timestamp: Option<i64>,
}

impl SegmentState {
    pub fn empty(base_offset: i64, config: &LogConfig) -> SegmentState {
        SegmentState {
            index: OffsetIndex::new(base_offset, config.segment_index_bytes),
            time_index: TimeIndex::new(base_offset, config.segment_index_bytes),
            size: 0,
            next_offset: base_offset,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_base_timestamp: None,
        }
    }

    /// Kafka's roll predicate, every reason in one place: the batch would not fit in
    /// `segment.bytes`; `segment.ms` has passed since the segment's first batch; an index is
    /// full; or the batch's last offset cannot be stored relative to the base.
    pub fn should_roll(
        &self,
        base_offset: i64,
        config: &LogConfig,
        incoming_bytes: u64,
        incoming_max_timestamp: i64,
        incoming_last_offset: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let too_big = self.size > config.segment_bytes.saturating_sub(incoming_bytes);
        let too_old = match self.rolling_base_timestamp {
            Some(first) if first >= 0 => incoming_max_timestamp.saturating_sub(first) > config.segment_ms,
            _ => false,
        };
        let index_full = self.index.is_full() || self.time_index.is_full();
        let offset_unrepresentable = incoming_last_offset - base_offset > RELATIVE_OFFSET_MAX;
        too_big || too_old || index_full || offset_unrepresentable
    }

    /// Records a batch placed at `position`: offsets, timestamps, and the sparse index entries
    /// Kafka would write for it (keyed by the batch's last offset).
    pub fn account_batch(&mut self, header: &BatchHeader, position: u64, config: &LogConfig) {
        self.note_timestamp(header);
        if self.bytes_since_index > config.index_interval_bytes {
            self.index.append(header.last_offset(), position as u32);
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index = 0;
        }
        let size = header.size_bytes() as u64;
        self.bytes_since_index += size;
        self.size = self.size.max(position + size);
        self.next_offset = header.last_offset() + 1;
    }

    fn note_timestamp(&mut self, header: &BatchHeader) {
        if self.rolling_base_timestamp.is_none() {
            self.rolling_base_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
    }

    /// The max timestamp of the segment's first batch, when known (segments opened without a
    /// scan do not know it).
    pub fn first_timestamp(&self) -> Option<i64> {
        self.rolling_base_timestamp.filter(|t| *t >= 0)
    }

    /// Called when the segment stops being the active one: Kafka appends a final time index
    /// entry for the largest timestamp, so time lookups never miss the segment's tail.
    pub fn seal(&mut self) {
        if self.max_timestamp >= 0 {
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
    }

    /// Re-validates every batch of `file` from its start (the same checks as on append, with
    /// the stored-count rule) and returns the state of the valid prefix plus the file size.
    /// Stops at the first torn, corrupt or out-of-order batch.
    pub async fn scan(file: &SegmentFile, config: &LogConfig) -> Result<(SegmentState, u64), LogError> {
        let base_offset = file.base_offset;
        let mut state = SegmentState::empty(base_offset, config);
        let file_size = file.file.file_size().await?;
        let mut position = 0u64;
        // A window of the file: `chunk` holds bytes from `chunk_start`. Refilled (from the
        // current batch's start) whenever the next header or batch is not wholly inside it.
        let mut chunk_start = 0u64;
        let mut chunk: Vec<u8> = Vec::new();
        while position < file_size {
            let at = (position - chunk_start) as usize;
            let needed = match BatchHeader::read(chunk.get(at..).unwrap_or(&[])) {
                Some(h) => h.size_bytes().max(BATCH_HEADER_BYTES),
                None => BATCH_HEADER_BYTES,
            };
            if at + needed > chunk.len() {
                if position + needed as u64 > file_size {
                    break; // torn tail: the file ends inside this batch
                }
                let want = ((file_size - position) as usize).min(RECOVERY_READ_CHUNK_BYTES.max(needed));
                chunk = file.file.read_at(position, want).await?.to_vec();
                chunk_start = position;
                if chunk.len() < needed {
                    break;
                }
                continue; // re-read the header from the new window
            }
            let Ok(header) = batch::validate(&chunk[at..at + needed], position as usize, Check::Stored) else {
                break;
            };
            let in_order =
                header.base_offset >= state.next_offset && header.last_offset() - base_offset <= u32::MAX as i64;
            if !in_order {
                break;
            }
            state.account_batch(&header, position, config);
            position += header.size_bytes() as u64;
        }
        state.size = position;
        Ok((state, file_size))
    }
}

/// Where a segment's two index files are. They are opened only to be written or synced and
/// closed right after (issue #14, Build 2): the entries live in memory, so a segment holds
/// one descriptor (its `.log`) rather than three, and a node with many partitions starts
/// and serves under a low `RLIMIT_NOFILE`. A sync round with new entries, a roll, a
/// truncation or a close opens them; a sealed segment's are opened once more to be
/// fdatasynced.
#[derive(Debug, Clone)]
pub struct IndexFiles {
    index: PathBuf,
    time_index: PathBuf,
}

/// Index entries taken from memory, to be written to their files.
#[derive(Debug)]
pub struct IndexWrites {
    files: IndexFiles,
    index: (Vec<u8>, u64),
    time_index: (Vec<u8>, u64),
    /// Rewrite: truncate both files first.
    rewrite: bool,
}

impl IndexWrites {
    /// Writes the entries (nothing is opened when there are none and no rewrite).
    pub async fn apply(self) -> Result<(), LogError> {
        self.write(false).await
    }

    /// Writes the entries and fdatasyncs both files (a close: the next start trusts them).
    pub async fn apply_synced(self) -> Result<(), LogError> {
        self.write(true).await
    }

    async fn write(self, sync: bool) -> Result<(), LogError> {
        if let Some(e) = crate::fault::io_fault(crate::fault::Io::Index) {
            return Err(LogError::io("writing an index (injected fault)", e));
        }
        for (path, (bytes, at)) in [(&self.files.index, self.index), (&self.files.time_index, self.time_index)] {
            if bytes.is_empty() && !self.rewrite && !sync {
                continue;
            }
            let file = Segment::open_rw(path, self.rewrite).await?;
            let written = async {
                if !bytes.is_empty() {
                    write_fully(&file, bytes, at).await?;
                }
                if sync {
                    file.fdatasync().await?;
                }
                Ok::<(), LogError>(())
            }
            .await;
            file.close().await?;
            written?;
        }
        Ok(())
    }
}

impl IndexFiles {
    /// fdatasyncs both files (written earlier through descriptors since closed: the dirty
    /// pages belong to the file, and since Linux 4.16 a writeback error nobody has seen yet
    /// is reported to a descriptor opened after it — kernel-notes/).
    pub async fn sync(&self) -> Result<(), LogError> {
        for path in [&self.index, &self.time_index] {
            // Never created here: a file removed after a failed write must stay missing.
            let file = match OpenOptions::new().read(true).write(true).buffered_open(path).await {
                Ok(file) => file,
                Err(e) => match std::io::Error::from(e) {
                    e if e.kind() == std::io::ErrorKind::NotFound => continue,
                    e => return Err(LogError::io(format!("opening {}", path.display()), e)),
                },
            };
            let synced = file.fdatasync().await;
            file.close().await?;
            synced?;
        }
        Ok(())
    }
}

/// One segment: its files and what is known of its contents.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub log: Rc<SegmentFile>,
    pub index_files: IndexFiles,
    pub state: SegmentState,
    /// Bytes of the `.log` that have reached the page cache; reads never go past it.
    pub written: u64,
    /// Entries of each index already in its file.
    index_persisted: usize,
    time_index_persisted: usize,
}

/// What recovery found in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryOutcome {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
        let stem = file_stem(base_offset);
        [dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex"))]
    }

    async fn open_rw(path: &Path, truncate: bool) -> Result<BufferedFile, LogError> {
        Ok(OpenOptions::new().read(true).write(true).create(true).truncate(truncate).buffered_open(path).await?)
    }

    fn index_files(dir: &Path, base_offset: i64) -> IndexFiles {
        let [_, index, time_index] = Self::paths(dir, base_offset);
        IndexFiles { index, time_index }
    }

    /// Opens (creates) the `.log`; with `truncate`, empties it and both index files.
    async fn open_files(
        dir: &Path,
        base_offset: i64,
        truncate: bool,
    ) -> Result<(Rc<SegmentFile>, IndexFiles), LogError> {
        let [log_path, index_path, time_path] = Self::paths(dir, base_offset);
        let file = Self::open_rw(&log_path, truncate).await?;
        if truncate {
            // Created empty, as Kafka creates a segment's three files together (tools list
            // them); stale entries of an interrupted roll must not lie past what is written.
            for path in [&index_path, &time_path] {
                Self::open_rw(path, true).await?.close().await?;
            }
        }
        let index_files = IndexFiles { index: index_path, time_index: time_path };
        Ok((Rc::new(SegmentFile { base_offset, path: log_path, file }), index_files))
    }

    /// Creates a new, empty segment starting at `base_offset`, replacing any leftover files
    /// of that name (a roll interrupted by a crash leaves at most empty ones).
    pub async fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Segment, LogError> {
        let (log, index_files) = Self::open_files(dir, base_offset, true).await?;
        Ok(Segment {
            base_offset,
            log,
            index_files,
            state: SegmentState::empty(base_offset, config),
            written: 0,
            index_persisted: 0,
            time_index_persisted: 0,
        })
    }

    /// A segment whose `.log` was written elsewhere (a cleaning) and whose contents are known:
    /// opens it; the caller rewrites both indexes from `state` (`take_index_writes(true)`).
    pub async fn adopt(dir: &Path, base_offset: i64, state: SegmentState) -> Result<Segment, LogError> {
        let [log_path, ..] = Self::paths(dir, base_offset);
        let file = Self::open_rw(&log_path, false).await?;
        Ok(Segment {
            base_offset,
            log: Rc::new(SegmentFile { base_offset, path: log_path, file }),
            index_files: Self::index_files(dir, base_offset),
            written: state.size,
            state,
            index_persisted: 0,
            time_index_persisted: 0,
        })
    }

    /// Opens an existing segment and loads its indexes, trusting them if they pass their
    /// sanity checks. Returns whether they did; if not, the caller must `recover`. The next
    /// offset is not known until `recover` or `load_tail` runs.
    pub async fn open(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<(Segment, bool), LogError> {
        // A missing index would be created empty below and pass as sane (Kafka rebuilds it).
        let [_, index_path, time_path] = Self::paths(dir, base_offset);
        let indexes_present = index_path.exists() && time_path.exists();
        let (log, index_files) = Self::open_files(dir, base_offset, false).await?;
        let size = log.file.file_size().await?;
        let index_bytes = read_index(&index_files.index)?;
        let time_bytes = read_index(&index_files.time_index)?;
        let index = OffsetIndex::decode(base_offset, &index_bytes, size, config.segment_index_bytes);
        let time_index = TimeIndex::decode(base_offset, &time_bytes, config.segment_index_bytes);
        let sane = indexes_present && index.is_ok() && time_index.is_ok();
        let mut state = SegmentState::empty(base_offset, config);
        if let (Ok(index), Ok(time_index)) = (index, time_index) {
            if let Some((ts, offset)) = time_index.last() {
                state.max_timestamp = ts;
                state.offset_of_max_timestamp = offset;
            }
            state.index = index;
            state.time_index = time_index;
        }
        state.size = size;
        let segment = Segment {
            base_offset,
            log,
            index_files,
            written: size,
            index_persisted: state.index.len(),
            time_index_persisted: state.time_index.len(),
            state,
        };
        Ok((segment, sane))
    }

    /// Re-validates the whole segment, cuts the file after its last valid batch and rewrites
    /// both indexes from what remains.
    pub async fn recover(&mut self, config: &LogConfig) -> Result<RecoveryOutcome, LogError> {
        let (mut state, file_size) = SegmentState::scan(&self.log, config).await?;
        // As Kafka's `recover` (and a roll) do: end the time index with the newest timestamp,
        // which a later clean start reads back as the segment's max timestamp.
        state.seal();
        let valid_bytes = state.size;
        if valid_bytes < file_size {
            self.log.file.truncate(valid_bytes).await?;
        }
        self.install(state);
        self.take_index_writes(true).apply().await?;
        Ok(RecoveryOutcome { valid_bytes, truncated_bytes: file_size - valid_bytes })
    }

    /// Replaces what is known of the contents (after a scan); everything counts as written.
    pub fn install(&mut self, state: SegmentState) {
        self.written = state.size;
        self.state = state;
    }

    /// After a clean shutdown: trusts the indexes and walks only the batch headers after the
    /// last index entry, to learn the next offset, the newest timestamps and where the index
    /// interval stands.
    pub async fn load_tail(&mut self, config: &LogConfig) -> Result<(), LogError> {
        let (_, start) = self.state.index.floor(i64::MAX);
        let size = self.state.size;
        let mut tail = self.state.clone();
        tail.next_offset = self.base_offset;
        tail.bytes_since_index = 0;
        tail.rolling_base_timestamp = self.log.read_header_at(0, size).await?.map(|h| h.max_timestamp);
        let mut position = start as u64;
        while let Some(header) = self.log.read_header_at(position, size).await? {
            tail.note_timestamp(&header);
            tail.next_offset = header.last_offset() + 1;
            tail.bytes_since_index += header.size_bytes() as u64;
            position += header.size_bytes() as u64;
        }
        if position != size {
            return Err(LogError::Corrupt(format!(
                "{}: batches end at byte {position} but the file has {size} bytes",
                self.log.path.display()
            )));
        }
        let _ = config;
        self.state = tail;
        Ok(())
    }

    /// Takes the index entries not yet in their files (all of them with `rewrite`).
    pub fn take_index_writes(&mut self, rewrite: bool) -> IndexWrites {
        if rewrite {
            self.index_persisted = 0;
            self.time_index_persisted = 0;
        }
        let writes = IndexWrites {
            files: self.index_files.clone(),
            index: (
                self.state.index.encode_entries(self.index_persisted),
                (self.index_persisted * OFFSET_INDEX_ENTRY_BYTES) as u64,
            ),
            time_index: (
                self.state.time_index.encode_entries(self.time_index_persisted),
                (self.time_index_persisted * TIME_INDEX_ENTRY_BYTES) as u64,
            ),
            rewrite,
        };
        self.index_persisted = self.state.index.len();
        self.time_index_persisted = self.state.time_index.len();
        writes
    }

    /// Unlinks the two index files (best effort: unlinking needs no space, and a file left
    /// would only be found damaged or short and rebuilt) and counts no entry as written.
    pub fn remove_index_files(&mut self, dir: &Path) {
        let [_, index, time_index] = Self::paths(dir, self.base_offset);
        for path in [index, time_index] {
            let _ = std::fs::remove_file(path);
        }
        self.index_persisted = 0;
        self.time_index_persisted = 0;
    }

    /// Unlinks the segment's three files. Readers holding the `SegmentFile` keep reading: an
    /// unlinked file lives until its last descriptor closes.
    pub fn delete_files(dir: &Path, base_offset: i64) -> Result<(), LogError> {
        let txn_index = dir.join(format!("{}.txnindex", file_stem(base_offset)));
        for path in Self::paths(dir, base_offset).into_iter().chain([txn_index]) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(format!("removing {}", path.display()), e)),
            }
        }
        Ok(())
    }
}

/// A piece of a queued append: a batch's patched first bytes, or a slice of a request frame.
#[derive(Debug)]
pub enum Piece {
    Prefix([u8; batch::PATCHED_PREFIX_BYTES]),
    Shared(Bytes),
}

impl Piece {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Piece::Prefix(p) => p,
            Piece::Shared(b) => b,
        }
    }
}

/// The pieces copied into one buffer of `len` bytes (for `write_fully`).
pub fn gather(pieces: &[Piece], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for p in pieces {
        out.extend_from_slice(p.bytes());
    }
    out
}

/// Writes the pieces back to back at `position` with `pwritev(2)` on this thread: the
/// kernel copies them from the request frames straight into the page cache. At most
/// `PWRITEV_CALL_BYTES_MAX` per call, yielding to the shard's other tasks between calls
/// when its time slice is used up, so a large coalesced write does not hold up requests of
/// other partitions. A short write continues where it stopped; an error (ENOSPC, EIO) is
/// returned as is and takes the partition offline (what reached the file is checked by
/// recovery, as after a crash).
pub async fn write_pieces(file: &BufferedFile, pieces: &[Piece], position: u64) -> Result<(), LogError> {
    if let Some(e) = crate::fault::io_fault(crate::fault::Io::Write) {
        return Err(LogError::io(format!("writing at byte {position} (injected fault)"), e));
    }
    let fd = file.as_raw_fd();
    let (mut piece, mut skip, mut at) = (0usize, 0usize, position);
    while piece < pieces.len() {
        let mut iov: Vec<libc::iovec> = Vec::with_capacity((pieces.len() - piece).min(IOVECS_PER_CALL_MAX));
        let mut bytes = 0usize;
        for p in &pieces[piece..] {
            if iov.len() == IOVECS_PER_CALL_MAX || bytes >= PWRITEV_CALL_BYTES_MAX {
                break;
            }
            let b = &p.bytes()[if iov.is_empty() { skip } else { 0 }..];
            iov.push(libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() });
            bytes += b.len();
        }
        // SAFETY: every iovec points into a piece borrowed for the whole call; fd is open.
        let n = unsafe { libc::pwritev(fd, iov.as_ptr(), iov.len() as i32, at as libc::off_t) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(LogError::io(format!("writing at byte {at}"), e));
        }
        if n == 0 {
            let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "pwritev wrote nothing");
            return Err(LogError::io(format!("writing at byte {at}"), e));
        }
        at += n as u64;
        // Advance past what was written.
        let mut left = n as usize;
        while left > 0 {
            let rest = pieces[piece].bytes().len() - skip;
            if left >= rest {
                left -= rest;
                piece += 1;
                skip = 0;
            } else {
                skip += left;
                left = 0;
            }
        }
        glommio::yield_if_needed().await;
    }
    Ok(())
}

/// Writes all of `bytes` at `position`. glommio takes the buffer by value and does not hand
/// it back, so a short write cannot be resumed without a copy kept just in case; on a
/// regular file a short write only happens when the file system is out of space (or the
/// file past its size limit), which the retry would hit again. It is reported as an I/O
/// error, which takes the partition offline until recovery checks what reached the file.
pub async fn write_fully(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<(), LogError> {
    if let Some(e) = crate::fault::io_fault(crate::fault::Io::Write) {
        return Err(LogError::io(format!("writing at byte {position} (injected fault)"), e));
    }
    let len = bytes.len();
    let written = file.write_at(bytes, position).await?;
    if written != len {
        let e = std::io::Error::new(std::io::ErrorKind::WriteZero, format!("short write: {written} of {len} bytes"));
        return Err(LogError::io(format!("writing at byte {position}"), e));
    }
    Ok(())
}

/// An index file's bytes (none if it is missing: `open` then rebuilds it). A blocking read
/// on the shard, once per segment at open, as the directory listing before it is.
fn read_index(path: &Path) -> Result<Vec<u8>, LogError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LogError::io(format!("reading {}", path.display()), e)),
    }
}
