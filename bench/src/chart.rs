//! The result chart as hand-written SVG: throughput over time (top) and the latency
//! percentile curve (bottom, x on the usual 1/(1-q) log scale so the tail is visible).

use crate::workload::RunResult;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 720.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 930.0;
const PRODUCE_COLOR: &str = "#1f77b4";
const CONSUME_COLOR: &str = "#d62728";

/// A "nice" axis maximum and tick step at or above `max`.
fn nice(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let mag = 10f64.powf(max.log10().floor());
    let step =
        [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| max / s <= 5.0).unwrap_or(mag);
    ((max / step).ceil() * step, step)
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct Panel {
    top: f64,
    bottom: f64,
}

fn axes(svg: &mut String, p: &Panel, title: &str, y_label: &str, y_max: f64, y_step: f64, fmt: &dyn Fn(f64) -> String) {
    let _ =
        writeln!(svg, r#"<text x="{}" y="{}" font-size="18" font-weight="bold">{title}</text>"#, LEFT, p.top - 14.0);
    let mut v = 0.0;
    while v <= y_max + y_step * 0.01 {
        let y = p.bottom - v / y_max * (p.bottom - p.top);
        let _ = writeln!(svg, r##"<line x1="{LEFT}" x2="{RIGHT}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            fmt(v)
        );
        v += y_step;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        p.top,
        RIGHT - LEFT,
        p.bottom - p.top
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18,{:.1}) rotate(-90)" font-size="14" text-anchor="middle">{y_label}</text>"#,
        (p.top + p.bottom) / 2.0
    );
}

fn polyline(svg: &mut String, points: &[(f64, f64)], color: &str, dashed: bool) {
    if points.is_empty() {
        return;
    }
    let mut s = String::new();
    for (x, y) in points {
        let _ = write!(s, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        svg,
        r#"<polyline points="{s}" fill="none" stroke="{color}" stroke-width="2.5"{}/>"#,
        if dashed { r#" stroke-dasharray="8 5""# } else { "" }
    );
}

fn legend(svg: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    for (i, (name, color)) in items.iter().enumerate() {
        let yy = y + i as f64 * 20.0;
        let dash = if *color == CONSUME_COLOR { r#" stroke-dasharray="8 5""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" x2="{}" y1="{yy}" y2="{yy}" stroke="{color}" stroke-width="3"{dash}/>"#,
            x + 24.0
        );
        let _ = writeln!(svg, r#"<text x="{}" y="{}" font-size="13">{name}</text>"#, x + 30.0, yy + 4.0);
    }
}

/// Rates (records/s) between consecutive samples, at each interval's end.
fn rates(samples: &[(f64, u64, u64)], pick: impl Fn(&(f64, u64, u64)) -> u64) -> Vec<(f64, f64)> {
    // The last interval is cut short by the end of the run; a sliver of it is mostly noise.
    let min_dt = crate::workload::SAMPLE_INTERVAL.as_secs_f64() / 2.0;
    samples
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 >= min_dt)
        .map(|w| (w[1].0, (pick(&w[1]) - pick(&w[0])) as f64 / (w[1].0 - w[0].0)))
        .collect()
}

/// Tail points of the percentile curve: (log10 of 1/(1-q), latency in ms).
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut x = 0.0;
    while x <= 5.0 {
        let q = 1.0 - 10f64.powf(-x);
        out.push((x, h.value_at_quantile(q) as f64 / 1000.0));
        x += 0.05;
    }
    out.push((5.0, h.max() as f64 / 1000.0));
    out
}

pub fn render(r: &RunResult) -> String {
    let w = &r.workload;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    let title = format!("sluice-bench {} — {} against {}", w.label, w.mode.name(), w.bootstrap);
    let subtitle = format!(
        "{} producers, {} consumers{}, {} partitions, size {} B, acks {}, compression {:?}",
        w.producers,
        w.consumers,
        if w.group.is_some() { " (consumer group)" } else { "" },
        w.partitions,
        w.size.describe(),
        w.acks,
        w.compression
    );
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#, xml(&title));
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="42" font-size="13">{}</text>"#, xml(&subtitle));

    // Throughput over time.
    let top = Panel { top: 86.0, bottom: 320.0 };
    let produce = rates(&r.samples, |s| s.1);
    let consume = rates(&r.samples, |s| s.2);
    let t_max = r.samples.last().map_or(1.0, |s| s.0).max(0.5);
    let peak = produce.iter().chain(consume.iter()).map(|p| p.1).fold(0.0, f64::max);
    let (y_max, y_step) = nice(peak * 1.05);
    axes(&mut svg, &top, "Throughput over time", "records / s", y_max, y_step, &fmt_num);
    let (_, t_step) = nice(t_max);
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let x = LEFT + t / t_max * (RIGHT - LEFT);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" font-size="13" text-anchor="middle">{}</text>"#,
            top.bottom + 18.0,
            trim(t)
        );
        t += t_step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">seconds since start</text>"#,
        (LEFT + RIGHT) / 2.0,
        top.bottom + 38.0
    );
    if !w.warmup.is_zero() {
        let x = LEFT + (w.warmup.as_secs_f64() / t_max).min(1.0) * (RIGHT - LEFT);
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{}" width="{:.1}" height="{}" fill="#000" fill-opacity="0.06"/>"##,
            top.top,
            x - LEFT,
            top.bottom - top.top
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{}" font-size="12" fill="#555">warm-up</text>"##,
            LEFT + 6.0,
            top.top + 16.0
        );
    }
    let scale = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter()
            .map(|&(t, v)| (LEFT + t / t_max * (RIGHT - LEFT), top.bottom - v / y_max * (top.bottom - top.top)))
            .collect()
    };
    let mut items = Vec::new();
    if r.acked > 0 {
        polyline(&mut svg, &scale(&produce), PRODUCE_COLOR, false);
        items.push(("produced (acknowledged)", PRODUCE_COLOR));
    }
    if r.consumed > 0 {
        polyline(&mut svg, &scale(&consume), CONSUME_COLOR, true);
        items.push(("consumed", CONSUME_COLOR));
    }
    legend(&mut svg, RIGHT - 210.0, top.top + 18.0, &items);

    // Latency percentile curve.
    let bottom = Panel { top: 420.0, bottom: 650.0 };
    let ack = curve(&r.ack_hist);
    let e2e = curve(&r.e2e_hist);
    let lat_peak = ack.iter().chain(e2e.iter()).map(|p| p.1).fold(0.0, f64::max);
    let (l_max, l_step) = nice(lat_peak * 1.05);
    let co = if w.rate.is_some() { " (open loop, coordinated omission corrected)" } else { "" };
    axes(&mut svg, &bottom, &format!("Latency by percentile{co}"), "latency (ms)", l_max, l_step, &trim);
    for (x, label) in [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%"), (5.0, "max")] {
        let px = LEFT + x / 5.0 * (RIGHT - LEFT);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{}" y2="{}" stroke="#ddd"/>"##,
            bottom.top, bottom.bottom
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{}" font-size="13" text-anchor="middle">{label}</text>"#,
            bottom.bottom + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">percentile</text>"#,
        (LEFT + RIGHT) / 2.0,
        bottom.bottom + 38.0
    );
    let lscale = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter()
            .map(|&(x, v)| (LEFT + x / 5.0 * (RIGHT - LEFT), bottom.bottom - v / l_max * (bottom.bottom - bottom.top)))
            .collect()
    };
    let mut items = Vec::new();
    let mut ack_name = String::new();
    let mut e2e_name = String::new();
    if !ack.is_empty() {
        polyline(&mut svg, &lscale(&ack), PRODUCE_COLOR, false);
        ack_name = format!("produce-ack: p99 {}", crate::report::fmt_us(r.ack_hist.value_at_quantile(0.99)));
    }
    if !e2e.is_empty() {
        polyline(&mut svg, &lscale(&e2e), CONSUME_COLOR, true);
        e2e_name = format!("end-to-end: p99 {}", crate::report::fmt_us(r.e2e_hist.value_at_quantile(0.99)));
    }
    if !ack_name.is_empty() {
        items.push((ack_name.as_str(), PRODUCE_COLOR));
    }
    if !e2e_name.is_empty() {
        items.push((e2e_name.as_str(), CONSUME_COLOR));
    }
    if items.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="14">no latency samples in this mode</text>"#,
            LEFT + 20.0,
            bottom.top + 30.0
        );
    }
    legend(&mut svg, LEFT + 16.0, bottom.top + 18.0, &items);
    svg.push_str("</svg>\n");
    svg
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
