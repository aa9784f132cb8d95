//! The `sluice` binary: the node (default), plus storage inspection tools.

use sluice::config::BrokerConfig;
use sluice::server::{parse_cores, run as run_node, ServerArgs};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
sluice — a Kafka-wire-compatible streaming storage node

USAGE:
    sluice [OPTIONS]                                 serve Kafka clients
    sluice dump-log <SEGMENT.log|.index|.timeindex>   print batches or index entries
    sluice check <PARTITION-DIR>                     open (and recover) a partition, print its offsets
    sluice groups [--admin HOST:PORT]                consumer groups of a running node: members,
                                                     assignments, committed offsets and lag
    sluice layout [--admin HOST:PORT]                per core of a running node: busy fraction, requests/s,
                                                     partitions, bytes/s, hottest partitions, imbalance
    sluice layout move TOPIC PARTITION CORE [--admin HOST:PORT]
                                                     move a partition to another core (live)
    sluice layout rebalance [--admin HOST:PORT]      move partitions so the cores' measured load evens out
    sluice doctor [--data-dir DIR] [--cores LIST]    check this host (kernel, io_uring, limits, filesystem,
                                                     THP, CPU governor, NIC IRQs, NUMA): ok/warn/FAIL + advice

OPTIONS:
    --listen HOST:PORT   Kafka listener (default 127.0.0.1:9092; port 0 picks one)
    --data-dir DIR       where partitions live (default ./data)
    --cores LIST         cores to run shards on, e.g. 0-3 or 0,2 (default: all)
    --admin HOST:PORT    HTTP endpoint: /metrics (Prometheus: per-shard load and latency),
                         /layout and /groups (JSON), /groups.txt (default 127.0.0.1:9644,
                         Redpanda's admin port; port 0 picks one)
    --admin off          no admin endpoint
    --config FILE        TOML file of broker settings under their Kafka names
    --set NAME=VALUE     one broker setting (repeatable; wins over --config)
    -h, --help           this text

When ready it prints one line: `sluice: ready kafka=ADDR admin=ADDR|- shards=N`.
SIGINT/SIGTERM: stop accepting, flush every partition, write checkpoints and the
clean-shutdown marker, exit 0.

SETTINGS (--set / --config):
";

/// The panic policy: a panic anywhere — a shard, the admin endpoint, a tool — prints its
/// message and location (the default hook) and then aborts the whole process. A shard that
/// died alone would leave its partitions and coordinators unreachable while the rest of the
/// node answered for them (other shards would wait on it forever); the log is built to be
/// recovered after a crash (nothing acknowledged under acks=all is lost, node/tests/crash.rs),
/// so the node stops at once and a supervisor (systemd `Restart=`, Kubernetes) starts it
/// again, as Kafka halts its broker on a fatal error.
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("sluice: aborting after a panic (the node restarts from its log)");
        std::process::abort();
    }));
}

fn main() -> ExitCode {
    abort_on_panic();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["dump-log", path] => run(sluice_tools::dump(PathBuf::from(path))),
        ["check", path] => run(sluice_tools::check(PathBuf::from(path))),
        ["groups"] => run(sluice::cli::groups(sluice::admin::DEFAULT_ADDR)),
        ["groups", "--admin", addr] => run(sluice::cli::groups(addr)),
        ["layout", rest @ ..] => run(sluice::cli::layout(rest)),
        ["doctor", rest @ ..] => sluice::doctor::main(rest),
        [first, ..] if *first == "--help" || *first == "-h" || *first == "help" => {
            println!("{USAGE}{}", BrokerConfig::help());
            ExitCode::SUCCESS
        }
        _ => match parse_server_args(&args) {
            Ok(server) => run(run_node(server)),
            Err(e) => {
                eprintln!("sluice: {e}\n\n{USAGE}{}", BrokerConfig::help());
                ExitCode::from(2)
            }
        },
    }
}

fn parse_server_args(args: &[String]) -> Result<ServerArgs, String> {
    let mut listen = "127.0.0.1:9092".to_string();
    let mut data_dir = PathBuf::from("./data");
    let mut cores = None;
    let mut admin = Some(sluice::admin::DEFAULT_ADDR.to_string());
    let mut config_file = None;
    let mut sets = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--data-dir" => data_dir = PathBuf::from(value()?),
            "--cores" => cores = Some(parse_cores(&value()?)?),
            "--admin" => admin = Some(value()?).filter(|a| a != "off"),
            "--config" => config_file = Some(value()?),
            "--set" => sets.push(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut config = BrokerConfig::default();
    if let Some(file) = config_file {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("--config {file}: {e}"))?;
        config.apply_toml(&text).map_err(|e| format!("--config {file}: {e}"))?;
    }
    config.set_all(sets.iter().map(String::as_str))?;
    let cores = match cores {
        Some(c) => c,
        None => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    };
    Ok(ServerArgs { listen, admin, data_dir, cores, config })
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

#[cfg(test)]
mod tests {
    use super::parse_server_args;

    fn admin_of(args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_server_args(&args).expect("valid arguments").admin
    }

    /// The admin endpoint is on unless turned off, at Redpanda's port by default.
    #[test]
    fn admin_listener_defaults_to_9644_and_turns_off() {
        assert_eq!(admin_of(&[]).as_deref(), Some("127.0.0.1:9644"));
        assert_eq!(admin_of(&["--cores", "0"]).as_deref(), Some("127.0.0.1:9644"));
        assert_eq!(admin_of(&["--admin", "off"]), None);
        assert_eq!(admin_of(&["--admin", "0.0.0.0:9000"]).as_deref(), Some("0.0.0.0:9000"));
        // The last --admin wins, so a harness's default can be overridden by a test.
        assert_eq!(admin_of(&["--admin", "127.0.0.1:0", "--admin", "off"]), None);
        assert_eq!(admin_of(&["--admin", "off", "--admin", "127.0.0.1:0"]).as_deref(), Some("127.0.0.1:0"));
    }
}
