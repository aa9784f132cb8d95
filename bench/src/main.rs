//! `sluice-bench`: the load harness for Sluice and any Kafka-compatible broker.
//!
//! Subcommands: `produce`, `consume`, `e2e` (workloads), `preset NAME` (the seed
//! scenarios), `sink` (the produce path against an in-process broker that discards, to show
//! the harness is not the bottleneck), `compare` (two targets, or two layouts of one Sluice
//! node, in alternation), `baseline` (page-cache write and loopback TCP bandwidth) and
//! `layout` (a Sluice node's partition → shard map, per-shard load and imbalance; `--save`
//! writes a layout file). See the README section "Load testing with sluice-bench".

mod baseline;
mod chart;
mod client;
mod group;
mod keys;
mod layout;
mod records;
mod report;
mod sink;
mod workload;

use anyhow::{bail, Context, Result};
use kafka_protocol::records::Compression;
use std::collections::HashMap;
use std::time::Duration;
use workload::{Mode, RunResult, Stop, Workload};

const USAGE: &str = "\
sluice-bench — load harness for Kafka-compatible brokers

USAGE:
    sluice-bench produce|consume|e2e [WORKLOAD FLAGS]
    sluice-bench preset 1p-1part-1c|1p-npart-1c|1p-npart-group|np-npart-group [WORKLOAD FLAGS]
    sluice-bench sink     [--sink-cores 0] [WORKLOAD FLAGS]  produce path against an in-process
                          discarding broker (its threads pinned to --sink-cores)
    sluice-bench sink     --listen ADDR [--cores 0]  serve the discarding broker until killed
    sluice-bench compare  --a ADDR --b ADDR [--rounds N] [--preset P] [WORKLOAD FLAGS]
    sluice-bench compare  --layout-a FILE --layout-b FILE --admin ADDR [--rounds N] [--preset P]
                          [WORKLOAD FLAGS]  two layouts of one node (--bootstrap, or --broker):
                          each put in force through the admin API before each of its runs;
                          also each layout's mean imbalance sampled during its runs
    sluice-bench baseline [--dir DIR] [--mib M] [--passes 3] [--core C --peer-core P]
                          [--sync-bytes B [--sync-secs 3]] [--keep 0|1]
                          floors: page-cache write, loopback receive and send, and
                          write+fdatasync at B bytes, in MB/s and CPU-s per GiB
    sluice-bench layout   --admin ADDR [--internal 1]  partition → shard, per-shard load (busy
                          fraction, requests/s, MB/s) and the imbalance (busiest - idlest) / busiest;
                          --internal 1 lists internal topics partition by partition
    sluice-bench layout   --admin ADDR --save FILE  the user topics' placement as a layout file:
                          one `topic partition core` line each (# comments)

WORKLOAD FLAGS (defaults in brackets):
    --bootstrap ADDR      broker [127.0.0.1:9092] (one broker: all partitions are sent to it)
    --topic T [bench]     --partitions N [6]     (the topic is created if missing)
    --producers P [1]     --consumers C [1]      load threads
    --connections N [1]   producer connections per thread
    --in-flight K [5]     produce requests in flight per connection
    --batch-bytes B [16384]  --linger-ms L [5]  --acks 0|1|all [1; all with --idempotent 1]
    --idempotent 0|1 [0]  idempotent producers: InitProducerId per thread, sequences per
                          partition, each partition on one connection (needs acks all,
                          --in-flight at most 5)
    --compression none|gzip|snappy|lz4|zstd [none]
    --size B | uniform:MIN-MAX [1024]            message value size
    --keys none|round-robin|uniform|zipf[:S] [none]  --key-space N [10000]
    --rate N              target msgs/s over all producers (open loop) [unlimited]
    --warmup S [0]        --duration S [10] | --count N
    --from earliest|latest [earliest]            consume: catch-up or tail
    --fetch-bytes B [1048576]                    per partition per fetch
    --group ID            consumers join consumer group ID (range assignor, commits every
                          1 s and at rebalances; the clock starts once the group has formed)
                          [none: consumer i reads partitions p with p mod C = i; the
                          *-group presets use a fresh group per run]
    --cores 1,2           pin load threads round robin to these cores [not pinned]
    --out DIR             result.json and chart.svg [bench/out/<UTC time>]
    --baseline-mib M      also measure the floors first (median of --passes [3] of M MiB, the
                          baseline flags apply) and print ratios [off]
    --node-pid PID        report the broker's CPU per GiB over the measured window (all its
                          threads, from /proc/PID/stat) and, with the floors, the fraction of floor
    --quiet 1             no progress line";

/// `--name value` pairs.
pub struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").with_context(|| format!("unexpected argument {flag:?}"))?;
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Opts(map))
    }

    pub fn str(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.0.get(name) {
            Some(v) => v.parse().map_err(|_| anyhow::anyhow!("--{name}: {v:?} is not a number")),
            None => Ok(default),
        }
    }

    /// Sets `name` unless the user gave it.
    fn default(&mut self, name: &str, value: &str) {
        self.0.entry(name.to_string()).or_insert_with(|| value.to_string());
    }
}

fn main() {
    // `sluice-bench layout | head` ends quietly, as other command-line tools do, instead of
    // panicking on a closed stdout. Sockets are unaffected: std sends with MSG_NOSIGNAL.
    // SAFETY: setting a signal's disposition to the default at start, before any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("produce") => Opts::parse(&args[1..]).and_then(|o| run_workload(o, Mode::Produce, "produce")),
        Some("consume") => Opts::parse(&args[1..]).and_then(|o| {
            let mode = if o.str("from", "earliest") == "latest" { Mode::Tail } else { Mode::CatchUp };
            run_workload(o, mode, "consume")
        }),
        Some("e2e") => Opts::parse(&args[1..]).and_then(|o| run_workload(o, Mode::EndToEnd, "e2e")),
        Some("preset") if args.len() >= 2 => Opts::parse(&args[2..]).and_then(|o| run_preset(&args[1], o)),
        Some("sink") => Opts::parse(&args[1..]).and_then(sink::command),
        Some("compare") => Opts::parse(&args[1..]).and_then(|o| compare(&o)),
        Some("baseline") => Opts::parse(&args[1..]).and_then(|o| baseline::command(&o)),
        Some("layout") => Opts::parse(&args[1..]).and_then(|o| layout::command(&o)),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("sluice-bench: {e:#}");
        std::process::exit(1);
    }
}

fn parse_compression(s: &str) -> Result<Compression> {
    Ok(match s {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => bail!("--compression: none, gzip, snappy, lz4 or zstd"),
    })
}

pub fn parse_workload(o: &Opts, mode: Mode, label: &str) -> Result<Workload> {
    let idempotent = match o.str("idempotent", "0").as_str() {
        "0" => false,
        "1" => true,
        other => bail!("--idempotent {other}: 0 or 1"),
    };
    let acks = match o.str("acks", if idempotent { "all" } else { "1" }).as_str() {
        "all" | "-1" => -1,
        "0" => 0,
        "1" => 1,
        other => bail!("--acks {other}: 0, 1 or all"),
    };
    let in_flight = o.num("in-flight", 5)?;
    // As Kafka's producer checks enable.idempotence: it requires acks=all (an acknowledged
    // batch must be durable, or a retry after a lost leader could not be told from a new
    // one) and max.in.flight.requests.per.connection ≤ 5 (the broker remembers the last 5
    // batches of each producer per partition to detect duplicates and gaps).
    if idempotent && acks != -1 {
        bail!("--idempotent 1 needs --acks all (Kafka's producer refuses enable.idempotence with acks 0 or 1)");
    }
    if idempotent && in_flight > workload::IDEMPOTENT_IN_FLIGHT_MAX {
        bail!(
            "--idempotent 1 allows at most --in-flight {} (Kafka: max.in.flight.requests.per.connection ≤ 5 with enable.idempotence)",
            workload::IDEMPOTENT_IN_FLIGHT_MAX
        );
    }
    let stop =
        if o.has("count") { Stop::Count(o.num("count", 0)?) } else { Stop::Duration(secs(o.num("duration", 10.0)?)) };
    let cores = parse_cores(&o.str("cores", ""))?;
    let rate: f64 = o.num("rate", 0.0)?;
    Ok(Workload {
        label: o.str("label", label),
        mode,
        bootstrap: o.str("bootstrap", "127.0.0.1:9092"),
        topic: o.str("topic", "bench"),
        partitions: o.num("partitions", 6)?,
        producers: o.num("producers", 1)?,
        consumers: o.num("consumers", 1)?,
        connections: o.num("connections", 1)?,
        in_flight,
        batch_bytes: o.num("batch-bytes", 16384)?,
        linger: Duration::from_micros((o.num::<f64>("linger-ms", 5.0)? * 1000.0) as u64),
        acks,
        idempotent,
        compression: parse_compression(&o.str("compression", "none"))?,
        size: keys::SizeDist::parse(&o.str("size", "1024"))?,
        keys: keys::KeyDist::parse(&o.str("keys", "none"), o.num("key-space", 10_000)?)?,
        rate: (rate > 0.0).then_some(rate),
        warmup: secs(o.num("warmup", 0.0)?),
        stop,
        cores,
        fetch_bytes: o.num("fetch-bytes", 1 << 20)?,
        group: o.0.get("group").filter(|g| !g.is_empty()).cloned(),
        quiet: o.has("quiet"),
        node_pid: o.has("node-pid").then(|| o.num("node-pid", 0u32)).transpose()?,
    })
}

/// A core list "0,1" (empty: none).
pub fn parse_cores(list: &str) -> Result<Vec<usize>> {
    list.split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().parse::<usize>().with_context(|| format!("core list {list:?}")))
        .collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn run_workload(o: Opts, mode: Mode, label: &str) -> Result<()> {
    let w = parse_workload(&o, mode, label)?;
    let baselines = match o.has("baseline-mib") {
        true => Some(baseline::measure(&baseline::Setup::from_opts(&o)?)?),
        false => None,
    };
    let r = workload::run(&w)?;
    finish(&r, &o, baselines)
}

/// Prints the table (and ratios to the baselines), writes JSON and chart, and fails the
/// command if the run had errors.
fn finish(r: &RunResult, o: &Opts, baselines: Option<baseline::Baselines>) -> Result<()> {
    report::print_table(r);
    if let Some(b) = &baselines {
        b.print();
        if r.acked > 0 {
            println!("produce  {:.3} × page-cache write bandwidth", r.produce_mbs() / b.page_cache_write.mbs);
        }
        if r.consumed > 0 {
            println!("consume  {:.3} × loopback send bandwidth", r.consume_mbs() / b.loopback_send.mbs);
        }
    }
    if let Some(n) = &r.node_cpu {
        println!(
            "node CPU {:.3} CPU-s/GiB ({:.2} cores busy over {:.1} s, {:.0} MiB)",
            n.cpu_s_per_gib(),
            n.cores(),
            n.wall_secs,
            n.bytes as f64 / (1u64 << 20) as f64
        );
        if let Some(b) = &baselines {
            // A run that both produces and consumes has no single floor: report the produce one.
            let (floor, what) = match r.acked > 0 {
                true => (b.produce_cpu_s_per_gib(), "page-cache write + loopback receive"),
                false => (b.consume_cpu_s_per_gib(), "loopback send"),
            };
            println!("fraction of floor {:.3} (floor {floor:.3} CPU-s/GiB: {what})", floor / n.cpu_s_per_gib());
        }
    }
    let dir = o.0.get("out").map_or_else(report::default_out_dir, std::path::PathBuf::from);
    report::write_outputs(r, &dir)?;
    if let Some(e) = &r.first_error {
        bail!("the run failed: {e}");
    }
    Ok(())
}

/// Fills in a preset's defaults (any flag given on the command line wins).
fn preset_opts(name: &str, o: &mut Opts) -> Result<Mode> {
    let (producers, partitions, consumers, group) = match name {
        "1p-1part-1c" => ("1", "1", "1", false),
        "1p-npart-1c" => ("1", "6", "1", false),
        "1p-npart-group" => ("1", "6", "3", true),
        "np-npart-group" => ("2", "6", "3", true),
        _ => bail!("unknown preset {name:?}: 1p-1part-1c, 1p-npart-1c, 1p-npart-group, np-npart-group"),
    };
    if group {
        // A fresh group per run, so no offsets committed by an earlier run apply.
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        o.default("group", &format!("sluice-bench-{name}-{}-{}", std::process::id(), unix.as_millis()));
    }
    o.default("producers", producers);
    o.default("partitions", partitions);
    o.default("consumers", consumers);
    o.default("topic", &format!("bench-{name}"));
    o.default("warmup", "2");
    o.default("label", name);
    if !o.has("count") {
        o.default("duration", "10");
    }
    Ok(Mode::EndToEnd)
}

fn run_preset(name: &str, mut o: Opts) -> Result<()> {
    let mode = preset_opts(name, &mut o)?;
    run_workload(o, mode, name)
}

/// Median and (min, max) of a set of figures.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    };
    (median, v.first().copied().unwrap_or(f64::NAN), v.last().copied().unwrap_or(f64::NAN))
}

/// A figure of a run that compare reports.
type Figure = (&'static str, fn(&RunResult) -> f64);

const FIGURES: [Figure; 6] = [
    ("produce msg/s", |r| r.produce_rate()),
    ("produce MB/s", |r| r.produce_mbs()),
    ("consume msg/s", |r| r.consume_rate()),
    ("produce-ack p99 (µs)", |r| r.ack_hist.value_at_quantile(0.99) as f64),
    ("produce-ack p99.9 (µs)", |r| r.ack_hist.value_at_quantile(0.999) as f64),
    ("end-to-end p99 (µs)", |r| r.e2e_hist.value_at_quantile(0.99) as f64),
];

/// One side of a comparison: where its runs go and, comparing layouts, the placement put in
/// force before each of them.
struct Side {
    name: &'static str,
    /// What the report calls it: the broker's address, or `layout FILE`.
    what: String,
    bootstrap: String,
    layout: Option<Vec<layout::Placement>>,
    /// Per figure of `FIGURES`, one value per round.
    figures: Vec<Vec<f64>>,
    /// Partitions moved to put the layout in force, over all rounds.
    moved: usize,
    /// Per round, the imbalances sampled during the run (comparing layouts).
    imbalance: Vec<Vec<f64>>,
}

impl Side {
    fn new(name: &'static str, what: String, bootstrap: String, layout: Option<Vec<layout::Placement>>) -> Side {
        Side {
            name,
            what,
            bootstrap,
            layout,
            figures: vec![Vec::new(); FIGURES.len()],
            moved: 0,
            imbalance: Vec::new(),
        }
    }
}

/// The two sides and, comparing two layouts of one node, its admin endpoint.
fn compare_sides(o: &Opts) -> Result<([Side; 2], Option<String>)> {
    match (o.0.get("layout-a"), o.0.get("layout-b")) {
        (None, None) => {
            let need = "compare needs --a ADDR --b ADDR (two brokers), or --layout-a FILE --layout-b FILE --admin ADDR (two layouts of one node)";
            let a = o.0.get("a").context(need)?.clone();
            let b = o.0.get("b").context(need)?.clone();
            Ok(([Side::new("A", a.clone(), a, None), Side::new("B", b.clone(), b, None)], None))
        }
        (Some(fa), Some(fb)) => {
            if o.has("a") || o.has("b") {
                bail!(
                    "compare takes --a/--b (two brokers) or --layout-a/--layout-b (two layouts of one node), not both"
                );
            }
            let admin =
                o.0.get("admin")
                    .context("compare --layout-a/--layout-b needs --admin ADDR, the node's admin endpoint")?;
            let broker = o.str("bootstrap", "127.0.0.1:9092");
            let side = |name: &'static str, file: &String| -> Result<Side> {
                Ok(Side::new(name, format!("layout {file}"), broker.clone(), Some(layout::read_placements(file)?)))
            };
            Ok(([side("A", fa)?, side("B", fb)?], Some(admin.clone())))
        }
        _ => bail!("--layout-a and --layout-b go together"),
    }
}

/// The same workload on two sides in alternation — two brokers, or two layouts of one node
/// put in force before each run — and each figure as the ratio B / A.
fn compare(o: &Opts) -> Result<()> {
    let rounds: usize = o.num("rounds", 3)?;
    let mut opts = Opts(o.0.clone());
    if let Some(broker) = o.0.get("broker") {
        opts.0.insert("bootstrap".into(), broker.clone()); // `--broker` is `--bootstrap`
    }
    opts.default("duration", "5");
    opts.default("quiet", "1");
    let (mut sides, admin) = compare_sides(&opts)?;
    let (mode, label) = match o.0.get("preset") {
        Some(p) => (preset_opts(p, &mut opts)?, p.clone()),
        None => (
            match o.str("mode", "produce").as_str() {
                "e2e" => Mode::EndToEnd,
                "consume" => Mode::CatchUp,
                _ => Mode::Produce,
            },
            "compare".to_string(),
        ),
    };
    if let Some(admin) = &admin {
        // The layouts may name the workload's own topic: create it, then check both layouts
        // against the node before the first run.
        let w = parse_workload(&opts, mode, &label)?;
        workload::create_topic(&mut client::Conn::connect(&w.bootstrap)?, &w.topic, w.partitions)?;
        for side in &sides {
            layout::check(admin, side.layout.as_deref().unwrap_or_default()).with_context(|| side.what.clone())?;
        }
    }
    for round in 1..=rounds {
        for side in sides.iter_mut() {
            let mut w = parse_workload(&opts, mode, &label)?;
            w.bootstrap = side.bootstrap.clone();
            run_side(side, &w, admin.as_deref(), format!("round {round}/{rounds}"))?;
        }
    }
    let [a, b] = &sides;
    match &admin {
        None => println!(
            "\ncompare: A = {}, B = {}, {rounds} rounds in alternation (A, B, A, B, …); ratio = B / A per round",
            a.what, b.what
        ),
        Some(admin) => println!(
            "\ncompare on {} (admin {admin}): A = {}, B = {}, {rounds} rounds in alternation (A, B, A, B, …), \
             each layout put in force before each of its runs ({} and {} partition moves); ratio = B / A per round",
            a.bootstrap, a.what, b.what, a.moved, b.moved
        ),
    }
    print_figures(a, b);
    if admin.is_some() {
        print_imbalance(&sides);
    }
    Ok(())
}

/// One run of a side: its layout put in force first (comparing layouts) and /layout sampled
/// during the run; its figures go to the side.
fn run_side(side: &mut Side, w: &Workload, admin: Option<&str>, round: String) -> Result<()> {
    let mut moved = String::new();
    if let (Some(placements), Some(admin)) = (&side.layout, admin) {
        let n = layout::apply(admin, placements).with_context(|| format!("{round}: putting {} in force", side.what))?;
        side.moved += n;
        moved = format!(" ({n} partitions moved first)");
    }
    let sampler = admin.map(layout::Sampler::start);
    let r = workload::run(w)?;
    if let Some(s) = sampler {
        let formed = r.group.as_ref().map_or(0.0, |g| g.formed_ms / 1000.0);
        side.imbalance.push(s.finish(w.warmup + secs(formed)));
    }
    if let Some(e) = &r.first_error {
        bail!("{round} on {} ({}): {e}", side.name, side.what);
    }
    eprintln!(
        "{round} {} {}{moved}: produce {:.0} msg/s, consume {:.0} msg/s, ack p99 {}",
        side.name,
        side.what,
        r.produce_rate(),
        r.consume_rate(),
        report::fmt_us(r.ack_hist.value_at_quantile(0.99))
    );
    for (i, (_, f)) in FIGURES.iter().enumerate() {
        side.figures[i].push(f(&r));
    }
    Ok(())
}

/// Per figure: each side's median, and the median of the per-round ratios B / A with their
/// min–max spread.
fn print_figures(a: &Side, b: &Side) {
    println!("{:<24} {:>14} {:>14} {:>10} {:>18}", "figure", "A (median)", "B (median)", "B / A", "spread (min–max)");
    for (i, (name, _)) in FIGURES.iter().enumerate() {
        let (va, vb) = (&a.figures[i], &b.figures[i]);
        if va.iter().chain(vb.iter()).all(|v| *v == 0.0) {
            continue;
        }
        let ratios: Vec<f64> = va.iter().zip(vb).map(|(x, y)| y / x).collect();
        let (ra, _, _) = spread(va.clone());
        let (rb, _, _) = spread(vb.clone());
        let (r, lo, hi) = spread(ratios);
        println!("{name:<24} {ra:>14.0} {rb:>14.0} {r:>10.3} {:>18}", format!("{lo:.3}–{hi:.3}"));
    }
}

/// Each layout's mean imbalance over the samples of all its runs, with the spread of the
/// rounds' means.
fn print_imbalance(sides: &[Side]) {
    println!(
        "\nimbalance ((busiest - idlest) / busiest of the shards' busy fractions): the mean of /layout samples taken \
         once a second during each run, each over the node's last second and after the warm-up and group \
         formation (a run too short for one gets one sample as it ends); samples without requests left out"
    );
    for side in sides {
        let all: Vec<f64> = side.imbalance.iter().flatten().copied().collect();
        let means: Vec<f64> =
            side.imbalance.iter().filter(|s| !s.is_empty()).map(|s| s.iter().sum::<f64>() / s.len() as f64).collect();
        let (_, lo, hi) = spread(means);
        match all.len() {
            0 => println!("{} {:<40} idle (no sample with requests)", side.name, side.what),
            n => println!(
                "{} {:<40} {:.3} ({n} sample{}; rounds' means {lo:.3}–{hi:.3})",
                side.name,
                side.what,
                all.iter().sum::<f64>() / n as f64,
                if n == 1 { "" } else { "s" }
            ),
        }
    }
}
