//! The `sluice` binary.
//!
//! The network server arrives with the node issue; until then the binary offers the storage
//! tools that already work, so an operator can inspect a data directory.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
sluice — a Kafka-wire-compatible streaming storage node

USAGE:
    sluice dump-log <SEGMENT.log|.index|.timeindex>   print batches or index entries
    sluice check <PARTITION-DIR>                     open (and recover) a partition, print its offsets
    sluice --help

The Kafka listener (sluice --listen ...) is not built yet.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["dump-log", path] => run(sluice_tools::dump(PathBuf::from(path))),
        ["check", path] => run(sluice_tools::check(PathBuf::from(path))),
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

mod sluice_tools {
    use sluice::log::batch::{self, BatchHeader, Check};
    use sluice::log::index::{OffsetIndex, TimeIndex};
    use sluice::log::segment::parse_file_name;
    use sluice::log::{LogConfig, OpenHint, PartitionLog};
    use std::path::PathBuf;

    /// Like Kafka's `kafka-dump-log.sh`: one line per batch or index entry.
    pub fn dump(path: PathBuf) -> Result<(), String> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (base, ext) = parse_file_name(&name).ok_or_else(|| format!("{name}: not a segment file name"))?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        match ext {
            "log" => {
                let mut position = 0;
                while position < bytes.len() {
                    match batch::validate(&bytes[position..], position, Check::Stored) {
                        Ok(h) => print_batch(position, &h),
                        Err(e) => return Err(format!("stopped: {e}")),
                    }
                    position += BatchHeader::read(&bytes[position..]).map_or(bytes.len(), |h| h.size_bytes());
                }
            }
            "index" => {
                let index =
                    OffsetIndex::decode(base, &bytes, u64::MAX, u64::MAX).map_err(|e| format!("{name}: {e}"))?;
                for (offset, position) in index.entries() {
                    println!("offset: {offset} position: {position}");
                }
            }
            "timeindex" => {
                let index = TimeIndex::decode(base, &bytes, u64::MAX).map_err(|e| format!("{name}: {e}"))?;
                for (timestamp, offset) in index.entries() {
                    println!("timestamp: {timestamp} offset: {offset}");
                }
            }
            other => return Err(format!("{name}: unknown segment file type {other:?}")),
        }
        Ok(())
    }

    fn print_batch(position: usize, h: &BatchHeader) {
        println!(
            "baseOffset: {} lastOffset: {} count: {} position: {position} size: {} maxTimestamp: {} codec: {:?} \
             producerId: {} epoch: {} crc: {:#010x}",
            h.base_offset,
            h.last_offset(),
            h.record_count,
            h.size_bytes(),
            h.max_timestamp,
            h.codec(),
            h.producer_id,
            h.partition_leader_epoch,
            h.crc
        );
    }

    /// Opens a partition directory as the node would after a crash and prints its offsets.
    pub fn check(path: PathBuf) -> Result<(), String> {
        sluice::runtime::test_executor().run(async move {
            let log = PartitionLog::open(&path, LogConfig::default(), OpenHint::default())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "log start: {} log end: {} segments: {} bytes: {}",
                log.log_start_offset(),
                log.log_end_offset(),
                log.segment_count(),
                log.size_bytes()
            );
            Ok(())
        })
    }
}
