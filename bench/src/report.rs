//! Progress while a run goes (stderr, once a second), the final table (stdout), the JSON
//! result file and the chart next to it.

use crate::workload::{Mode, RunResult, Shared, Stop, Workload, SAMPLE_INTERVAL};
use hdrhistogram::Histogram;
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
        "accounting: produced {}  acknowledged {}  errors {}  consumed {}",
        r.produced, r.acked, r.errors, r.consumed
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

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_hist(h: &Histogram<u64>) -> String {
    let mut o = format!("{{\"unit\":\"us\",\"samples\":{}", h.len());
    if !h.is_empty() {
        for p in PERCENTILES {
            let _ = write!(o, ",\"p{}\":{}", p, h.value_at_percentile(p));
        }
        let _ = write!(o, ",\"max\":{},\"mean\":{:.1}", h.max(), h.mean());
    }
    o.push('}');
    o
}

/// The JSON result document (hand-written: no serde for one document).
pub fn to_json(r: &RunResult) -> String {
    let w = &r.workload;
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"label\": {},", json_str(&w.label));
    let _ = writeln!(o, "  \"description\": {},", json_str(&description(w)));
    let _ = writeln!(o, "  \"mode\": \"{}\",", w.mode.name());
    let _ = writeln!(o, "  \"bootstrap\": {},", json_str(&w.bootstrap));
    let _ = writeln!(o, "  \"topic\": {},", json_str(&w.topic));
    let _ = writeln!(o, "  \"idempotent\": {},", w.idempotent);
    let _ = writeln!(
        o,
        "  \"workload\": {{\"partitions\":{},\"producers\":{},\"consumers\":{},\"connections\":{},\"in_flight\":{},\"batch_bytes\":{},\"linger_ms\":{},\"acks\":{},\"compression\":\"{:?}\",\"size\":{},\"keys\":{},\"rate\":{},\"warmup_s\":{},\"consumer_assignment\":\"{}\"}},",
        w.partitions,
        w.producers,
        w.consumers,
        w.connections,
        w.in_flight,
        w.batch_bytes,
        w.linger.as_millis(),
        w.acks,
        w.compression,
        json_str(&w.size.describe()),
        json_str(&w.keys.describe()),
        w.rate.map_or("null".into(), |r| format!("{r}")),
        w.warmup.as_secs_f64(),
        if w.group.is_some() { "group" } else { "explicit" },
    );
    if let Some(g) = &r.group {
        let _ = writeln!(
            o,
            "  \"group\": {{\"id\":{},\"formed_ms\":{:.1},\"rebalances\":{},\"committed_total\":{},\"positions_total\":{}}},",
            json_str(&g.id),
            g.formed_ms,
            g.rebalances,
            g.committed_total,
            g.positions_total
        );
    }
    let _ = writeln!(
        o,
        "  \"accounting\": {{\"produced\":{},\"acknowledged\":{},\"errors\":{},\"consumed\":{}}},",
        r.produced, r.acked, r.errors, r.consumed
    );
    let _ = writeln!(
        o,
        "  \"produce\": {{\"msgs\":{},\"bytes\":{},\"seconds\":{:.4},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2}}},",
        r.acked_measured,
        r.acked_bytes_measured,
        r.produce_secs,
        r.produce_rate(),
        r.produce_mbs()
    );
    let _ = writeln!(
        o,
        "  \"consume\": {{\"msgs\":{},\"bytes\":{},\"seconds\":{:.4},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2}}},",
        r.consumed_measured,
        r.consumed_bytes_measured,
        r.consume_secs,
        r.consume_rate(),
        r.consume_mbs()
    );
    let _ = writeln!(o, "  \"produce_ack_latency\": {},", json_hist(&r.ack_hist));
    let _ = writeln!(o, "  \"end_to_end_latency\": {},", json_hist(&r.e2e_hist));
    o.push_str("  \"samples\": [");
    for (i, (t, a, c)) in r.samples.iter().enumerate() {
        let _ = write!(o, "{}[{t:.3},{a},{c}]", if i == 0 { "" } else { "," });
    }
    o.push_str("],\n");
    let _ = writeln!(o, "  \"error\": {}", r.first_error.as_deref().map_or("null".into(), json_str));
    o.push_str("}\n");
    o
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
