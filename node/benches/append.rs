//! Measures the partition log's write path against the machine, in the same run.
//!
//! 1. Throughput: 1 KiB records in 16 KiB batches appended to one partition, MB/s, next to
//!    a plain sequential buffered write of the same bytes (std `write_all`, and glommio
//!    `write_at` — the same io_uring path without the log around it).
//! 2. Group commit: acks=all-style appends (append, then wait for fdatasync) with 1, 8 and
//!    64 concurrent waiters, next to one fdatasync per write.
//!
//! Rounds alternate baseline and log; the median of each is reported with the ratio.
//! `cargo bench -p sluice-node --bench append [-- --mib 512 --rounds 3 --dir DIR]`

#[path = "../tests/common/mod.rs"]
mod common;

use sluice::log::{LogConfig, OpenHint, PartitionLog};
use sluice::runtime::{executor_builder, raise_memlock_limit};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Args {
    mib: usize,
    rounds: usize,
    dir: PathBuf,
    sync_seconds: f64,
}

fn parse_args() -> Args {
    let mut args = Args { mib: 512, rounds: 3, dir: PathBuf::from("target/bench-append"), sync_seconds: 2.0 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--mib" => args.mib = value.parse().expect("--mib N"),
            "--rounds" => args.rounds = value.parse().expect("--rounds N"),
            "--dir" => args.dir = PathBuf::from(value),
            "--sync-seconds" => args.sync_seconds = value.parse().expect("--sync-seconds S"),
            _ => {
                i += 1; // cargo bench passes --bench; ignore unknown flags
                continue;
            }
        }
        i += 2;
    }
    args
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(0.0, f64::max);
    format!("{lo:.0}–{hi:.0}")
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench dir");
}

/// One 16 KiB batch: 16 records of 1 KiB.
fn batch_16k() -> Vec<u8> {
    let value = vec![0x5au8; 1024];
    let values: Vec<&[u8]> = (0..16).map(|_| value.as_slice()).collect();
    common::batch(&values, 1_700_000_000_000)
}

fn plain_std_write(dir: &Path, batch: &[u8], count: usize) -> f64 {
    fresh(dir);
    let mut f = std::fs::File::create(dir.join("plain.bin")).expect("create");
    let start = Instant::now();
    for _ in 0..count {
        f.write_all(batch).expect("write");
    }
    let secs = start.elapsed().as_secs_f64();
    (batch.len() * count) as f64 / secs / 1e6
}

async fn plain_glommio_write(dir: &Path, batch: &[u8], count: usize) -> f64 {
    fresh(dir);
    let f = glommio::io::BufferedFile::create(dir.join("plain.bin")).await.expect("create");
    let start = Instant::now();
    let mut pos = 0u64;
    for _ in 0..count {
        let n = f.write_at(batch.to_vec(), pos).await.expect("write");
        pos += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    f.close().await.expect("close");
    (batch.len() * count) as f64 / secs / 1e6
}

/// `producers` tasks append `count` batches in total, each awaiting its own append.
async fn log_append(dir: &Path, batch: &[u8], count: usize, producers: usize) -> f64 {
    fresh(dir);
    let log = PartitionLog::open(&dir.join("t-0"), LogConfig::default(), OpenHint::default()).await.expect("open");
    let batch: Rc<Vec<u8>> = Rc::new(batch.to_vec());
    let start = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let (log, batch) = (log.clone(), batch.clone());
            let share = count / producers + usize::from(p < count % producers);
            glommio::spawn_local(async move {
                for _ in 0..share {
                    log.append(&batch, 0, 0).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (batch.len() * count) as f64 / secs / 1e6
}

/// `waiters` tasks each loop: append one 1 KiB record, wait for its fdatasync. Returns
/// (acked appends per second, appends per fdatasync).
async fn group_commit(dir: &Path, waiters: usize, duration: Duration) -> (f64, f64) {
    fresh(dir);
    let log = PartitionLog::open(&dir.join("t-0"), LogConfig::default(), OpenHint::default()).await.expect("open");
    let batch = Rc::new(common::batch(&[&[7u8; 1024]], 0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..waiters)
        .map(|_| {
            let (log, batch) = (log.clone(), batch.clone());
            glommio::spawn_local(async move {
                let mut acked = 0u64;
                while start.elapsed() < duration {
                    let info = log.append(&batch, 0, 0).await.expect("append");
                    log.sync_to(info.last_offset + 1).await.expect("sync");
                    acked += 1;
                }
                acked
            })
        })
        .collect();
    let mut acked = 0;
    for t in tasks {
        acked += t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (acked as f64 / secs, acked as f64 / log.sync_rounds().max(1) as f64)
}

/// One fdatasync per write of a 1 KiB record batch, sequentially.
async fn fsync_per_write(dir: &Path, duration: Duration) -> f64 {
    fresh(dir);
    let f = glommio::io::BufferedFile::create(dir.join("plain.bin")).await.expect("create");
    let batch = common::batch(&[&[7u8; 1024]], 0);
    let start = Instant::now();
    let (mut pos, mut n) = (0u64, 0u64);
    while start.elapsed() < duration {
        pos += f.write_at(batch.clone(), pos).await.expect("write") as u64;
        f.fdatasync().await.expect("fdatasync");
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    f.close().await.expect("close");
    rate
}

fn main() {
    let args = parse_args();
    raise_memlock_limit();
    let spin = std::env::var("SPIN_US").ok().and_then(|v| v.parse().ok()).unwrap_or(0u64);
    let mut builder = executor_builder("bench-append", Some(0));
    if spin > 0 {
        builder = builder.spin_before_park(Duration::from_micros(spin));
    }
    let ex = builder.make().expect("executor");
    ex.run(async move {
        let batch = batch_16k();
        let count = args.mib * 1024 * 1024 / batch.len();
        let dir = args.dir.clone();
        println!(
            "# append throughput: {} batches of {} B (16 × 1 KiB records), {} MiB per run, {} rounds",
            count,
            batch.len(),
            args.mib,
            args.rounds
        );
        let (mut std_w, mut gl_w, mut log1, mut log4) = (vec![], vec![], vec![], vec![]);
        let (mut gl_big, mut log16) = (vec![], vec![]);
        let big: Vec<u8> = batch.iter().copied().cycle().take(batch.len() * 16).collect();
        for _ in 0..args.rounds {
            std_w.push(plain_std_write(&dir, &batch, count));
            log1.push(log_append(&dir, &batch, count, 1).await);
            gl_w.push(plain_glommio_write(&dir, &batch, count).await);
            log4.push(log_append(&dir, &batch, count, 4).await);
            gl_big.push(plain_glommio_write(&dir, &big, count / 16).await);
            log16.push(log_append(&dir, &batch, count, 16).await);
        }
        let base = median(std_w.clone());
        println!("{:<44} {:>10} {:>14} {:>8}", "what", "MB/s", "spread", "ratio");
        for (name, v) in [
            ("plain write_all 16 KiB (baseline)", &std_w),
            ("plain glommio write_at 16 KiB", &gl_w),
            ("log append, 1 producer", &log1),
            ("log append, 4 producers (coalesced)", &log4),
            ("plain glommio write_at 256 KiB", &gl_big),
            ("log append, 16 producers (coalesced)", &log16),
        ] {
            println!("{:<44} {:>10.0} {:>14} {:>8.2}", name, median(v.clone()), spread(v), median(v.clone()) / base);
        }

        let d = Duration::from_secs_f64(args.sync_seconds);
        println!("\n# acks=all-style appends (1 KiB record, append + fdatasync wait), {:.1} s each", args.sync_seconds);
        let per_write = fsync_per_write(&dir, d).await;
        println!("{:<44} {:>10} {:>14} {:>8}", "what", "acks/s", "appends/sync", "ratio");
        println!("{:<44} {:>10.0} {:>14} {:>8.2}", "one fdatasync per write (baseline)", per_write, "1", 1.0);
        for waiters in [1, 8, 64] {
            let (rate, per_sync) = group_commit(&dir, waiters, d).await;
            let name = format!("group commit, {waiters} waiters");
            println!("{:<44} {:>10.0} {:>14.1} {:>8.2}", name, rate, per_sync, rate / per_write);
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
