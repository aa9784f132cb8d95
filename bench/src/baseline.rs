//! The floors: the cheapest way this machine can do the work a broker does, measured in the
//! same run (and the same memory-cgroup state) as a workload, so that the node's figures
//! print as fractions of them.
//!
//! - page-cache write: 1 MiB sequential buffered `write(2)`s into a new file (what a produce
//!   must at least cost on the node's side of the disk);
//! - loopback receive: one TCP connection on 127.0.0.1, 1 MiB reads (what taking the
//!   produce requests off the socket must at least cost);
//! - loopback send: the same transfer, measuring the sender (what a fetch must at least cost);
//! - fdatasync-bound write (`--sync-bytes B`): B-byte appends each followed by `fdatasync`,
//!   the ceiling of acks=all on this disk at that write size.
//!
//! Each floor reports MB/s and the CPU seconds per GiB of the thread doing the measured side
//! (`getrusage(RUSAGE_THREAD)`: user + system), pinned to `--core` (the node's core) while the
//! other side of a loopback transfer runs on `--peer-core` (the load generator's core). The
//! node's own figure is all of its threads' CPU from `/proc/PID/stat` (see `NodeCpu`).
//!
//! Files are kept (`--keep 1`) when a script measures in a memory cgroup kept full of clean
//! page cache: deleting a file mid-run frees its pages, the host reclaims them, and the next
//! writer pays for fresh ones (on this VM about ten times a recycled page). The script
//! deletes the directory at its end.

use crate::Opts;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes per write or read in the floors (the node writes and sends in large chunks too).
const CHUNK_BYTES: usize = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;

/// One floor: bandwidth and the measured side's CPU per GiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Floor {
    pub mbs: f64,
    pub cpu_s_per_gib: f64,
}

/// The fdatasync-bound floor: also the syncs per second reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncFloor {
    pub write_bytes: usize,
    pub floor: Floor,
    pub syncs_per_s: f64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Baselines {
    pub page_cache_write: Floor,
    pub loopback_receive: Floor,
    pub loopback_send: Floor,
    pub sync_write: Option<SyncFloor>,
}

impl Baselines {
    /// The floor of a produce: page-cache write plus loopback receive, CPU-s per GiB.
    pub fn produce_cpu_s_per_gib(&self) -> f64 {
        self.page_cache_write.cpu_s_per_gib + self.loopback_receive.cpu_s_per_gib
    }

    /// The floor of a consume: loopback send, CPU-s per GiB.
    pub fn consume_cpu_s_per_gib(&self) -> f64 {
        self.loopback_send.cpu_s_per_gib
    }

    pub fn print(&self) {
        let row = |name: &str, f: &Floor| {
            println!("{name:<44} {:>9.0} MB/s {:>8.3} CPU-s/GiB", f.mbs, f.cpu_s_per_gib);
        };
        row("floor: page-cache write (1 MiB writes)", &self.page_cache_write);
        row("floor: loopback receive (1 MiB reads)", &self.loopback_receive);
        row("floor: loopback send (1 MiB writes)", &self.loopback_send);
        if let Some(s) = &self.sync_write {
            let name = format!("floor: write+fdatasync ({} B writes)", s.write_bytes);
            println!(
                "{name:<44} {:>9.1} MB/s {:>8.3} CPU-s/GiB {:>8.0} syncs/s",
                s.floor.mbs, s.floor.cpu_s_per_gib, s.syncs_per_s
            );
        }
        println!("{:<44} {:>24.3} CPU-s/GiB", "floor of a produce (write + receive)", self.produce_cpu_s_per_gib());
    }
}

/// Where and how the floors run.
#[derive(Debug, Clone)]
pub struct Setup {
    pub dir: PathBuf,
    pub mib: u64,
    pub passes: usize,
    /// The measured side's core (the node's core), and the other side's.
    pub core: Option<usize>,
    pub peer_core: Option<usize>,
    pub sync_bytes: Option<usize>,
    pub sync_secs: f64,
    /// Leave the written files in `dir` (a script deletes them at its end).
    pub keep: bool,
}

impl Setup {
    pub fn from_opts(o: &Opts) -> Result<Setup> {
        let core = |name: &str| -> Result<Option<usize>> { o.has(name).then(|| o.num(name, 0usize)).transpose() };
        Ok(Setup {
            dir: PathBuf::from(o.str("dir", "target/bench-baseline")),
            mib: o.num("mib", o.num("baseline-mib", 1024)?)?,
            passes: o.num("passes", 3usize)?.max(1),
            core: core("core")?,
            peer_core: core("peer-core")?,
            sync_bytes: o.has("sync-bytes").then(|| o.num("sync-bytes", 0usize)).transpose()?,
            sync_secs: o.num("sync-secs", 3.0)?,
            keep: o.num("keep", 0u8)? == 1,
        })
    }
}

pub fn command(o: &Opts) -> Result<()> {
    let b = measure(&Setup::from_opts(o)?)?;
    b.print();
    Ok(())
}

/// Runs every floor `passes` times and keeps each floor's median pass (by CPU per GiB).
pub fn measure(s: &Setup) -> Result<Baselines> {
    std::fs::create_dir_all(&s.dir).with_context(|| format!("creating {}", s.dir.display()))?;
    let mut writes = Vec::new();
    let mut receives = Vec::new();
    let mut sends = Vec::new();
    let mut syncs = Vec::new();
    for _ in 0..s.passes {
        writes.push(on_core(s.core, {
            let (dir, mib, keep) = (s.dir.clone(), s.mib, s.keep);
            move || page_cache_write(&dir, mib, keep)
        })?);
        receives.push(loopback(s.mib, s.core, s.peer_core, Side::Receiver)?);
        sends.push(loopback(s.mib, s.core, s.peer_core, Side::Sender)?);
        if let Some(bytes) = s.sync_bytes {
            syncs.push(on_core(s.core, {
                let (dir, secs, keep) = (s.dir.clone(), s.sync_secs, s.keep);
                move || sync_write(&dir, bytes, secs, keep)
            })?);
        }
    }
    let median_floor = |mut v: Vec<Floor>| {
        v.sort_by(|a, b| a.cpu_s_per_gib.total_cmp(&b.cpu_s_per_gib));
        v[v.len() / 2]
    };
    let sync_write = (!syncs.is_empty()).then(|| {
        syncs.sort_by(|a: &SyncFloor, b| a.floor.mbs.total_cmp(&b.floor.mbs));
        syncs[syncs.len() / 2]
    });
    Ok(Baselines {
        page_cache_write: median_floor(writes),
        loopback_receive: median_floor(receives),
        loopback_send: median_floor(sends),
        sync_write,
    })
}

/// Runs `f` on a new thread pinned to `core`.
fn on_core<T: Send + 'static>(core: Option<usize>, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::spawn(move || {
        pin(core);
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("floor thread panicked"))?
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// This thread's CPU time so far (user + system).
pub fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn floor_of(bytes: u64, wall: Duration, cpu: Duration) -> Floor {
    Floor {
        mbs: bytes as f64 / wall.as_secs_f64().max(1e-9) / 1e6,
        cpu_s_per_gib: cpu.as_secs_f64() / (bytes as f64 / GIB).max(1e-12),
    }
}

/// A file name no earlier pass used (files are kept while a script runs).
fn fresh_path(dir: &Path, stem: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    dir.join(format!("{stem}-{}-{nanos}.bin", std::process::id()))
}

fn page_cache_write(dir: &Path, mib: u64, keep: bool) -> Result<Floor> {
    let path = fresh_path(dir, "pagecache");
    let mut f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0x5au8; CHUNK_BYTES];
    let (cpu0, start) = (thread_cpu(), Instant::now());
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    let floor = floor_of(mib << 20, start.elapsed(), thread_cpu() - cpu0);
    // Every writer meets the same state: nothing dirty left for the next one to wait on.
    f.sync_all()?;
    drop(f);
    if !keep {
        std::fs::remove_file(&path)?;
    }
    Ok(floor)
}

fn sync_write(dir: &Path, bytes: usize, secs: f64, keep: bool) -> Result<SyncFloor> {
    let path = fresh_path(dir, "fdatasync");
    let mut f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0x5au8; bytes.max(1)];
    let (cpu0, start) = (thread_cpu(), Instant::now());
    let mut rounds = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f.write_all(&chunk)?;
        // SAFETY: fdatasync on a descriptor we own.
        if unsafe { libc::fdatasync(f.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error()).context("fdatasync");
        }
        rounds += 1;
    }
    let wall = start.elapsed();
    let floor = floor_of(rounds * chunk.len() as u64, wall, thread_cpu() - cpu0);
    drop(f);
    if !keep {
        std::fs::remove_file(&path)?;
    }
    Ok(SyncFloor { write_bytes: chunk.len(), floor, syncs_per_s: rounds as f64 / wall.as_secs_f64().max(1e-9) })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Sender,
    Receiver,
}

/// One loopback transfer of `mib` MiB; the `measured` side runs on `core`, the other on
/// `peer_core`; returns the measured side's floor.
fn loopback(mib: u64, core: Option<usize>, peer_core: Option<usize>, measured: Side) -> Result<Floor> {
    let total = mib << 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (send_core, recv_core) = match measured {
        Side::Sender => (core, peer_core),
        Side::Receiver => (peer_core, core),
    };
    let sender = std::thread::spawn(move || -> Result<(Duration, Duration)> {
        pin(send_core);
        let mut s = std::net::TcpStream::connect(addr)?;
        let chunk = vec![0x5au8; CHUNK_BYTES];
        let (cpu0, start) = (thread_cpu(), Instant::now());
        for _ in 0..mib {
            s.write_all(&chunk)?;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        // Wait for the receiver's close, so the clock covers the whole transfer.
        let _ = s.read(&mut [0u8; 1]);
        Ok((start.elapsed(), thread_cpu() - cpu0))
    });
    let receiver = std::thread::spawn(move || -> Result<(u64, Duration, Duration)> {
        pin(recv_core);
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let (cpu0, start) = (thread_cpu(), Instant::now());
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok((got, start.elapsed(), thread_cpu() - cpu0))
    });
    let (got, recv_wall, recv_cpu) = receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    let (send_wall, send_cpu) = sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    anyhow::ensure!(got == total, "loopback transfer ended early: {got} of {total} bytes");
    Ok(match measured {
        Side::Sender => floor_of(total, send_wall, send_cpu),
        Side::Receiver => floor_of(total, recv_wall, recv_cpu),
    })
}

/// All CPU time (user + system, every thread, io_uring workers included) of a process,
/// from `/proc/PID/stat`.
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields.get(11..13).context("short /proc stat")?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}
