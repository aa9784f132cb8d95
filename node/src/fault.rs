//! Faults for tests, asked for through environment variables read once (afterwards each
//! check is one branch on a cached `None`).
//!
//! `SLUICE_FAULT_PANIC_TOPIC=T`: the first produce request naming topic `T` panics the shard
//! handling it — the test of the node's panic policy (`main.rs`: any panic aborts the
//! process; restart recovers from the log).
//!
//! `SLUICE_FAULT_DIR=DIR`: while `DIR/write` exists, every log write (partition appends,
//! indexes, `.txnindex`, checkpoints) fails with the errno the file names (`ENOSPC` or
//! `EIO`); while `DIR/sync` exists, every partition fdatasync does; while `DIR/index`
//! exists, only the writes of `.index`/`.timeindex` files do. A test creates and
//! removes the files while the node runs (one `stat` per write or sync, only when the
//! variable is set).

use std::path::PathBuf;
use std::sync::OnceLock;

static FAULT_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The kinds of I/O a fault can be injected into.
#[derive(Debug, Clone, Copy)]
pub enum Io {
    Write,
    Sync,
    Index,
}

/// The error to fail this I/O with, if the test asked for one.
pub fn io_fault(io: Io) -> Option<std::io::Error> {
    let dir = FAULT_DIR.get_or_init(|| std::env::var_os("SLUICE_FAULT_DIR").map(PathBuf::from)).as_ref()?;
    let name = match io {
        Io::Write => "write",
        Io::Sync => "sync",
        Io::Index => "index",
    };
    let what = std::fs::read_to_string(dir.join(name)).ok()?;
    let errno = if what.trim() == "EIO" { libc::EIO } else { libc::ENOSPC };
    Some(std::io::Error::from_raw_os_error(errno))
}

static PANIC_TOPIC: OnceLock<Option<String>> = OnceLock::new();

/// Panics when `topic` is the one `SLUICE_FAULT_PANIC_TOPIC` names.
pub fn panic_on_produce(topic: &str) {
    let wanted = PANIC_TOPIC.get_or_init(|| std::env::var("SLUICE_FAULT_PANIC_TOPIC").ok().filter(|t| !t.is_empty()));
    if wanted.as_deref() == Some(topic) {
        panic!("SLUICE_FAULT_PANIC_TOPIC: a produce to {topic:?}");
    }
}
