//! The machine's physical limits, measured in the same run as a workload so results print
//! as ratios: page-cache sequential write bandwidth and loopback TCP bandwidth.

use crate::Opts;
use anyhow::Result;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

/// Bytes per write in both baselines (the node writes and sends in large chunks too).
const CHUNK_BYTES: usize = 1 << 20;

pub struct Baselines {
    pub page_cache_mbs: f64,
    pub loopback_mbs: f64,
}

pub fn command(o: &Opts) -> Result<()> {
    let dir = std::path::PathBuf::from(o.str("dir", "target/bench-baseline"));
    let b = measure(&dir, o.num("mib", 1024)?)?;
    println!("{:<40} {:>10.0} MB/s", "page-cache sequential write (1 MiB)", b.page_cache_mbs);
    println!("{:<40} {:>10.0} MB/s", "loopback TCP (1 MiB writes)", b.loopback_mbs);
    Ok(())
}

/// Passes of each baseline; the best counts (a limit is what the machine can do at best, and
/// on a shared machine a single pass can catch writeback or another process).
const PASSES: usize = 3;

pub fn measure(dir: &Path, mib: u64) -> Result<Baselines> {
    let mut best = Baselines { page_cache_mbs: 0.0, loopback_mbs: 0.0 };
    for _ in 0..PASSES {
        let b = measure_once(dir, mib)?;
        best.page_cache_mbs = best.page_cache_mbs.max(b.page_cache_mbs);
        best.loopback_mbs = best.loopback_mbs.max(b.loopback_mbs);
    }
    Ok(best)
}

fn measure_once(dir: &Path, mib: u64) -> Result<Baselines> {
    let total = mib << 20;
    std::fs::create_dir_all(dir)?;
    let chunk = vec![0x5au8; CHUNK_BYTES];
    let path = dir.join("pagecache.bin");
    let mut f = std::fs::File::create(&path)?;
    let start = Instant::now();
    for _ in 0..(total >> 20) {
        f.write_all(&chunk)?;
    }
    let page_cache_mbs = total as f64 / start.elapsed().as_secs_f64() / 1e6;
    drop(f);
    let _ = std::fs::remove_file(&path);

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let chunk = vec![0x5au8; CHUNK_BYTES];
        for _ in 0..(total >> 20) {
            s.write_all(&chunk)?;
        }
        Ok(())
    });
    let (mut s, _) = listener.accept()?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let start = Instant::now();
    let mut got = 0u64;
    while got < total {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let loopback_mbs = got as f64 / start.elapsed().as_secs_f64() / 1e6;
    writer.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    Ok(Baselines { page_cache_mbs, loopback_mbs })
}
