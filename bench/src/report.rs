//! Progress while a run goes (stderr, once a second), the final table (stdout), the JSON
//! result file and the chart next to it.

use crate::workload::{Mode, RunResult, Shared, Stop, Workload, SAMPLE_INTERVAL};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::Instant;

/// Percentiles reported everywhere.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// Samples counters until every load thread has finished; stops the run at its duration.
pub fn monitor(w: &Workload, sh: &Shared, handles: &[JoinHandle<()>]) -> (Vec<(f64, u64, u64)>, Option<NodeCpu>) {
    let mut samples = vec![(0.0, 0, 0)];
    let mut node_cpu = NodeCpuSampler::default();
    let mut next = sh.start + SAMPLE_INTERVAL;
    let mut last_print = (sh.start, 0u64, 0u64, 0u64);
    let total = match w.stop {
        Stop::Duration(d) => Some(w.warmup + d),
        Stop::Count(_) => None,
    };
    loop {
        let done = handles.iter().all(JoinHandle::is_finished);
        let now = Instant::now();
        if now >= next || done {
            let elapsed = now.duration_since(sh.start);
            if total.is_some_and(|t| elapsed >= t) {
                sh.stop.store(true, Relaxed);
            }
            let acked = sh.acked.load(Relaxed);
            let consumed = sh.consumed.load(Relaxed);
            samples.push((elapsed.as_secs_f64(), acked, consumed));
            if let Some(pid) = w.node_pid.filter(|_| now >= sh.measure_from) {
                let bytes = sh.acked_bytes_measured.load(Relaxed) + sh.consumed_bytes_measured.load(Relaxed);
                node_cpu.sample(pid, now, bytes);
            }
            next += SAMPLE_INTERVAL;
            if !w.quiet && (now.duration_since(last_print.0).as_secs_f64() >= 1.0 || done) {
                let dt = now.duration_since(last_print.0).as_secs_f64().max(1e-9);
                let bytes = sh.acked_bytes_measured.load(Relaxed) + sh.consumed_bytes_measured.load(Relaxed);
                let mut line = format!("[{:>6.1}s", elapsed.as_secs_f64());
                match total {
                    Some(t) => {
                        let _ = write!(
                            line,
                            " / {:.0}s, {:.0}s left]",
                            t.as_secs_f64(),
                            t.saturating_sub(elapsed).as_secs_f64()
                        );
                    }
                    None => line.push(']'),
                }
                if now < sh.measure_from {
                    line.push_str(" warm-up");
                }
                if w.mode != Mode::CatchUp && w.mode != Mode::Tail {
                    let p99 = p99_of(&sh.ack_hist);
                    let _ = write!(line, " produce {:>9.0} msg/s p99 {p99}", (acked - last_print.1) as f64 / dt);
                }
                if w.mode != Mode::Produce {
                    let _ = write!(line, " | consume {:>9.0} msg/s", (consumed - last_print.2) as f64 / dt);
                }
                if w.mode == Mode::EndToEnd {
                    let _ = write!(line, " e2e p99 {}", p99_of(&sh.e2e_hist));
                }
                let _ = write!(line, " | {:>7.1} MB/s", (bytes - last_print.3) as f64 / dt / 1e6);
                eprintln!("{line}");
                last_print = (now, acked, consumed, bytes);
            }
        }
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (samples, node_cpu.result())
}

/// The node's CPU over the measured window (`--node-pid`): all its threads, io_uring
/// workers included, from `/proc/PID/stat`, divided by the bytes moved in the same window.
#[derive(Debug, Clone, Copy)]
pub struct NodeCpu {
    pub cpu_secs: f64,
    pub wall_secs: f64,
    pub bytes: u64,
}

impl NodeCpu {
    pub fn cpu_s_per_gib(&self) -> f64 {
        self.cpu_secs / (self.bytes as f64 / (1u64 << 30) as f64).max(1e-12)
    }
    /// Cores the node kept busy on average.
    pub fn cores(&self) -> f64 {
        self.cpu_secs / self.wall_secs.max(1e-9)
    }
}

/// The first sample after the warm-up and the last one at which bytes still moved (the
/// window ends when the workload does, not when the harness has finished joining threads).
#[derive(Default)]
struct NodeCpuSampler {
    first: Option<(Instant, std::time::Duration, u64)>,
    last: Option<(Instant, std::time::Duration, u64)>,
}

impl NodeCpuSampler {
    fn sample(&mut self, pid: u32, now: Instant, bytes: u64) {
        let Ok(cpu) = crate::baseline::process_cpu(pid) else { return };
        match self.first {
            None => self.first = Some((now, cpu, bytes)),
            Some(_) if self.last.is_none_or(|(_, _, b)| bytes > b) => self.last = Some((now, cpu, bytes)),
            Some(_) => {}
        }
    }

    fn result(&self) -> Option<NodeCpu> {
        let ((t0, c0, b0), (t1, c1, b1)) = (self.first?, self.last?);
        Some(NodeCpu { cpu_secs: (c1 - c0).as_secs_f64(), wall_secs: (t1 - t0).as_secs_f64(), bytes: b1 - b0 })
    }
}

fn p99_of(h: &std::sync::Mutex<Histogram<u64>>) -> String {
    let h = h.lock().unwrap_or_else(|p| p.into_inner());
    if h.is_empty() {
        "-".into()
    } else {
        fmt_us(h.value_at_quantile(0.99))
    }
}

/// Microseconds as a short human figure.
pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn describe(w: &Workload) -> String {
    let stop = match w.stop {
        Stop::Duration(d) => format!("{}s", d.as_secs_f64()),
        Stop::Count(n) => format!("{n} msgs"),
    };
    let rate = w.rate.map_or("unlimited".to_string(), |r| format!("{r:.0} msg/s"));
    let label = if w.mode.name().starts_with(&w.label) { String::new() } else { format!("{} ", w.label) };
    format!(
        "{label}{}: {} producers x {} conns x {} in flight, {} consumers{}, {} partitions, size {}, keys {}, batch {} B, linger {} ms, acks {}, compression {:?}, rate {rate}, warm-up {}s, {stop}",
        w.mode.name(),
        w.producers,
        w.connections,
        w.in_flight,
        w.consumers,
        w.group.as_ref().map_or(String::new(), |g| format!(" in group {g}")),
        w.partitions,
        w.size.describe(),
        w.keys.describe(),
        w.batch_bytes,
        w.linger.as_millis(),
        w.acks,
        w.compression,
        w.warmup.as_secs_f64(),
    )
}

/// [`describe`] and whether the producers are idempotent.
fn description(w: &Workload) -> String {
    format!("{}, idempotent {}", describe(w), if w.idempotent { "yes" } else { "no" })
}

fn hist_row(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{name:<18} {:>10}  (no samples)\n", 0);
    }
    let mut row = format!("{name:<18} {:>10}", h.len());
    for p in PERCENTILES {
        let _ = write!(row, " {:>10}", fmt_us(h.value_at_percentile(p)));
    }
    let _ = writeln!(row, " {:>10}", fmt_us(h.max()));
    row
}

/// The final table on stdout.
pub fn print_table(r: &RunResult) {
    let w = &r.workload;
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", description(w));
    let _ = writeln!(
        out,
        "accounting: produced {}  acknowledged {}  errors {}  consumed {}  batches retried {}",
        r.produced, r.acked, r.errors, r.consumed, r.retries
    );
    if w.mode != Mode::CatchUp && w.mode != Mode::Tail {
        let _ = writeln!(
            out,
            "produce:  {:>12.0} msg/s  {:>9.1} MB/s  ({} msgs after warm-up in {:.2} s)",
            r.produce_rate(),
            r.produce_mbs(),
            r.acked_measured,
            r.produce_secs
        );
    }
    if w.mode != Mode::Produce {
        let _ = writeln!(
            out,
            "consume:  {:>12.0} msg/s  {:>9.1} MB/s  ({} msgs after warm-up in {:.2} s)",
            r.consume_rate(),
            r.consume_mbs(),
            r.consumed_measured,
            r.consume_secs
        );
    }
    if w.mode == Mode::Produce || w.mode == Mode::EndToEnd {
        let _ = write!(out, "{:<18} {:>10}", "latency", "samples");
        for p in PERCENTILES {
            let _ = write!(out, " {:>10}", format!("p{p}"));
        }
        let _ = writeln!(out, " {:>10}", "max");
        out.push_str(&hist_row(if w.rate.is_some() { "produce-ack (CO)" } else { "produce-ack" }, &r.ack_hist));
    }
    if w.mode == Mode::EndToEnd {
        out.push_str(&hist_row(if w.rate.is_some() { "end-to-end (CO)" } else { "end-to-end" }, &r.e2e_hist));
    }
    if w.rate.is_some() {
        out.push_str(
            "(CO: open loop, measured from each record's intended send time — coordinated omission corrected)\n",
        );
    }
    if let Some(g) = &r.group {
        let _ = writeln!(
            out,
            "group {}: formed in {:.0} ms before the clock started, {} rebalances during the run, committed offsets {} the consumers' positions (sum {} vs {})",
            g.id,
            g.formed_ms,
            g.rebalances,
            if g.committed_total == g.positions_total { "equal" } else { "DIFFER FROM" },
            g.committed_total,
            g.positions_total
        );
    }
    if let Some(e) = &r.first_error {
        let _ = writeln!(out, "first error: {e}");
    }
    print!("{out}");
}

/// `x` rounded to `places` decimals (the precision result.json reports).
fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// result.json (field order as written).
#[derive(Serialize)]
struct ResultDoc<'a> {
    label: &'a str,
    description: String,
    mode: &'a str,
    bootstrap: &'a str,
    topic: &'a str,
    idempotent: bool,
    workload: WorkloadDoc,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<GroupDoc<'a>>,
    accounting: AccountingDoc,
    produce: RateDoc,
    consume: RateDoc,
    produce_ack_latency: HistDoc,
    end_to_end_latency: HistDoc,
    /// (seconds since start, records acknowledged, records consumed).
    samples: Vec<(f64, u64, u64)>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct WorkloadDoc {
    partitions: i32,
    producers: usize,
    consumers: usize,
    connections: usize,
    in_flight: usize,
    batch_bytes: usize,
    linger_ms: u64,
    acks: i16,
    compression: String,
    size: String,
    keys: String,
    rate: Option<f64>,
    warmup_s: f64,
    consumer_assignment: &'static str,
}

#[derive(Serialize)]
struct GroupDoc<'a> {
    id: &'a str,
    formed_ms: f64,
    rebalances: u64,
    committed_total: i64,
    positions_total: i64,
}

#[derive(Serialize)]
struct AccountingDoc {
    produced: u64,
    acknowledged: u64,
    errors: u64,
    consumed: u64,
    /// Batches sent again after NOT_LEADER_OR_FOLLOWER and the like (not appended).
    retries: u64,
}

#[derive(Serialize)]
struct RateDoc {
    msgs: u64,
    bytes: u64,
    seconds: f64,
    msgs_per_s: f64,
    mb_per_s: f64,
}

/// A latency histogram: the sample count, and with samples the [`PERCENTILES`], max and mean.
#[derive(Serialize)]
struct HistDoc {
    unit: &'static str,
    samples: u64,
    #[serde(flatten)]
    stats: Option<HistStats>,
}

#[derive(Serialize)]
struct HistStats {
    p50: u64,
    p90: u64,
    p99: u64,
    #[serde(rename = "p99.9")]
    p99_9: u64,
    #[serde(rename = "p99.99")]
    p99_99: u64,
    max: u64,
    mean: f64,
}

fn hist_doc(h: &Histogram<u64>) -> HistDoc {
    let at = |i: usize| h.value_at_percentile(PERCENTILES[i]);
    let stats = (!h.is_empty()).then(|| HistStats {
        p50: at(0),
        p90: at(1),
        p99: at(2),
        p99_9: at(3),
        p99_99: at(4),
        max: h.max(),
        mean: round(h.mean(), 1),
    });
    HistDoc { unit: "us", samples: h.len(), stats }
}

/// The JSON result document.
pub fn to_json(r: &RunResult) -> String {
    let w = &r.workload;
    let rate = |msgs, bytes, seconds: f64, msgs_per_s: f64, mbs: f64| RateDoc {
        msgs,
        bytes,
        seconds: round(seconds, 4),
        msgs_per_s: round(msgs_per_s, 1),
        mb_per_s: round(mbs, 2),
    };
    let doc = ResultDoc {
        label: &w.label,
        description: description(w),
        mode: w.mode.name(),
        bootstrap: &w.bootstrap,
        topic: &w.topic,
        idempotent: w.idempotent,
        workload: WorkloadDoc {
            partitions: w.partitions,
            producers: w.producers,
            consumers: w.consumers,
            connections: w.connections,
            in_flight: w.in_flight,
            batch_bytes: w.batch_bytes,
            linger_ms: w.linger.as_millis() as u64,
            acks: w.acks,
            compression: format!("{:?}", w.compression),
            size: w.size.describe(),
            keys: w.keys.describe(),
            rate: w.rate,
            warmup_s: w.warmup.as_secs_f64(),
            consumer_assignment: if w.group.is_some() { "group" } else { "explicit" },
        },
        group: r.group.as_ref().map(|g| GroupDoc {
            id: &g.id,
            formed_ms: round(g.formed_ms, 1),
            rebalances: g.rebalances,
            committed_total: g.committed_total,
            positions_total: g.positions_total,
        }),
        accounting: AccountingDoc {
            produced: r.produced,
            acknowledged: r.acked,
            errors: r.errors,
            consumed: r.consumed,
            retries: r.retries,
        },
        produce: rate(r.acked_measured, r.acked_bytes_measured, r.produce_secs, r.produce_rate(), r.produce_mbs()),
        consume: rate(
            r.consumed_measured,
            r.consumed_bytes_measured,
            r.consume_secs,
            r.consume_rate(),
            r.consume_mbs(),
        ),
        produce_ack_latency: hist_doc(&r.ack_hist),
        end_to_end_latency: hist_doc(&r.e2e_hist),
        samples: r.samples.iter().map(|&(t, a, c)| (round(t, 3), a, c)).collect(),
        error: r.first_error.as_deref(),
    };
    serde_json::to_string_pretty(&doc).expect("serialising plain data cannot fail") + "\n"
}

/// Default output directory: bench/out/<UTC timestamp>.
pub fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let stamp = format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    Path::new(env!("CARGO_MANIFEST_DIR")).join("out").join(stamp)
}

/// Writes result.json and chart.svg into `dir`.
pub fn write_outputs(r: &RunResult, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("result.json"), to_json(r))?;
    std::fs::write(dir.join("chart.svg"), crate::chart::render(r))?;
    println!("wrote {}/result.json and chart.svg", dir.display());
    Ok(())
}
