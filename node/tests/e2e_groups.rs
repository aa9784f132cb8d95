//! Consumer groups end to end with real clients (issue 5): confluent-kafka (librdkafka) and
//! kafka-python members, run as background processes (`tests/clients/grp_consumer.py`) that
//! print what they see as JSON lines: assignments, revocations, every record (partition,
//! offset, message index), every commit and its acknowledgement. The tests start, stop and
//! SIGKILL them and the node, and check what a user would notice: who got which partitions,
//! that no message is lost or read twice (or only the uncommitted ones, after a crash), how
//! fast partitions move, and what the admin APIs, the admin endpoint and `sluice groups` say.
//!
//! Needs `bash scripts/test-deps.sh`. Each test starts its own node with a short initial
//! rebalance delay and a low minimum session timeout, so short session timeouts are allowed.
//! Knobs for a longer manual churn run: SLUICE_CHURN_SECS, SLUICE_CHURN_GROUPS.
//!
//! Message i (as produced by ck_produce.py) has the value `val-{i}`: the consumers report i
//! with each record, so loss and duplicates are counted by message, not only by offset.

mod support;

use sluice::testing::TempDir;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::json::{self, Json, Value};
use support::{check, free_port, http_get, proc_status_kb, py_json_timeout, run, sluice_command, wait_for, Bg, Node};

/// (topic, partition)
type Tp = (String, i32);

/// The node settings every test uses: groups form 200 ms after the first join (Kafka's
/// default 3 s would only slow the tests down) and session timeouts down to 1 s are allowed.
const GROUP_SETTINGS: &[&str] =
    &["--set", "group.initial.rebalance.delay.ms=200", "--set", "group.min.session.timeout.ms=1000"];

fn start_node(cores: &str, partitions: u32, extra: &[&str]) -> Node {
    let np = format!("num.partitions={partitions}");
    let mut args: Vec<&str> = vec!["--cores", cores, "--set", &np];
    args.extend_from_slice(GROUP_SETTINGS);
    args.extend_from_slice(extra);
    Node::start(&args)
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn figure(line: &str) {
    eprintln!("e2e figure: {line}");
}

fn tps(topic: &str, partitions: i32) -> BTreeSet<Tp> {
    (0..partitions).map(|p| (topic.to_string(), p)).collect()
}

fn tp_list(v: &Value) -> BTreeSet<Tp> {
    v.arr().iter().map(|x| (x.arr()[0].str().to_string(), x.arr()[1].i64() as i32)).collect()
}

fn show(set: &BTreeSet<Tp>) -> String {
    let v: Vec<String> = set.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    format!("[{}]", v.join(" "))
}

// ---------------------------------------------------------------------------------------------
// Producing (ck_produce.py: message i = key-{i % 1000} / val-{i}).

/// Produces messages `start..start+count` (acks=all) and returns how many went to each partition.
fn produce(node: &Node, topic: &str, start: usize, count: usize, extra: &[&str]) -> BTreeMap<i32, i64> {
    let out = support::ck_produce_all(node, topic, start as i64, count, extra);
    out["partitions"].obj().iter().map(|(p, s)| (p.parse().unwrap(), s["count"].i64())).collect()
}

// ---------------------------------------------------------------------------------------------
// Group members in the background.

/// One grp_consumer.py process (a group member) and what it printed.
struct Member {
    bg: Bg,
    name: String,
    stop_file: PathBuf,
}

/// One consumed record as a member reported it.
#[derive(Clone, Debug)]
struct Rec {
    t: f64,
    member: String,
    tp: Tp,
    offset: i64,
    /// The message index (from the value `val-{i}`), -1 if the value was not one of ours.
    i: i64,
}

impl Member {
    /// Starts `grp_consumer.py --client CLIENT` as member `name` of `group` on `topic`.
    /// `extra`: more grp_consumer.py flags (e.g. "--commit", "auto").
    fn start(node: &Node, dir: &TempDir, client: &str, name: &str, group: &str, topic: &str, extra: &[&str]) -> Member {
        let stop_file = dir.path().join(format!("stop-{name}"));
        let _ = std::fs::remove_file(&stop_file);
        let mut args: Vec<String> = [
            "--client",
            client,
            "--bootstrap",
            node.bootstrap(),
            "--group",
            group,
            "--topic",
            topic,
            "--name",
            name,
            "--stop-file",
            stop_file.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Member { bg: Bg::py(name, "grp_consumer.py", &args), name: name.to_string(), stop_file }
    }

    fn events(&self) -> Vec<Value> {
        self.bg.events()
    }

    fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["ev"].str() == kind).collect()
    }

    /// Its assignment after the last assign/revoke/lost event; `None` before the first one.
    fn assignment(&self) -> Option<BTreeSet<Tp>> {
        let evs = self.events();
        let last = evs.iter().rev().find(|e| matches!(e["ev"].str(), "assign" | "revoke" | "lost"))?;
        Some(tp_list(&last["now"]))
    }

    /// Time of its last assign event.
    fn last_assign_t(&self) -> Option<f64> {
        self.events_of("assign").last().map(|e| e["t"].f64())
    }

    /// Events that changed its assignment (assign, revoke, lost).
    fn rebalance_events(&self) -> Vec<Value> {
        self.events().into_iter().filter(|e| matches!(e["ev"].str(), "assign" | "revoke" | "lost")).collect()
    }

    fn records(&self) -> Vec<Rec> {
        let mut out = Vec::new();
        for e in self.events_of("recs") {
            let t = e["t"].f64();
            for r in e["r"].arr() {
                let r = r.arr();
                out.push(Rec {
                    t,
                    member: self.name.clone(),
                    tp: (r[0].str().to_string(), r[1].i64() as i32),
                    offset: r[2].i64(),
                    i: r[3].i64(),
                });
            }
        }
        out
    }

    fn count(&self) -> usize {
        self.events_of("recs").iter().map(|e| e["r"].arr().len()).sum()
    }

    /// Commits the coordinator acknowledged: (time, partition, offset).
    fn acked_commits(&self) -> Vec<(f64, Tp, i64)> {
        let mut out = Vec::new();
        for e in self.events_of("commit") {
            if !e["ok"].bool() {
                continue;
            }
            for o in e["offsets"].arr() {
                let o = o.arr();
                out.push((e["t"].f64(), (o[0].str().to_string(), o[1].i64() as i32), o[2].i64()));
            }
        }
        out
    }

    fn failed_commits(&self) -> Vec<Value> {
        self.events_of("commit").into_iter().filter(|e| !e["ok"].bool()).collect()
    }

    /// Consume errors it reported (ev "error").
    fn errors(&self) -> Vec<Value> {
        self.events_of("error")
    }

    /// Asks it to close (stop file) without waiting.
    fn request_stop(&self) {
        std::fs::write(&self.stop_file, b"stop").unwrap();
    }

    /// Closes it cleanly (stop file → close() → exit 0), within 60 s.
    fn stop(&mut self) {
        self.request_stop();
        match self.bg.wait(Duration::from_secs(60)) {
            None => panic!("{} did not exit within 60 s of its stop file\n{}", self.name, self.bg.logs(30)),
            Some(s) => assert!(s.success(), "{} exited with {s}\n{}", self.name, self.bg.logs(40)),
        }
    }

    /// SIGKILL: gone without a LeaveGroup, without a last commit.
    fn kill(&mut self) {
        self.bg.kill();
    }

    fn logs(&self) -> String {
        self.bg.logs(25)
    }
}

fn diag(node: &Node, members: &[&Member]) -> String {
    let mut s = String::new();
    for m in members {
        s.push_str(&m.logs());
        s.push('\n');
    }
    s.push_str(&node.logs(60));
    s
}

/// Every member has an assignment, together they hold `all` exactly once, and the split is
/// even (sizes differ by at most one, as range/roundrobin/sticky all give).
fn balanced(members: &[&Member], all: &BTreeSet<Tp>) -> bool {
    let sets: Vec<BTreeSet<Tp>> = match members.iter().map(|m| m.assignment()).collect::<Option<Vec<_>>>() {
        Some(s) => s,
        None => return false,
    };
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<Tp> = sets.iter().flatten().cloned().collect();
    let (lo, hi) = (all.len() / members.len(), all.len().div_ceil(members.len()));
    total == all.len() && union == *all && sets.iter().all(|s| (lo..=hi).contains(&s.len()))
}

fn assignments(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| format!("{}: {}", m.name, m.assignment().map(|s| show(&s)).unwrap_or_else(|| "(none yet)".into())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until `members` hold a balanced assignment of `all` that has not changed for `quiet`.
fn wait_balanced(node: &Node, members: &[&Member], all: &BTreeSet<Tp>, timeout: Duration, quiet: Duration) {
    let mut since: Option<(Instant, String)> = None;
    wait_for(
        &format!("a balanced assignment of {} over {} members", show(all), members.len()),
        timeout,
        || format!("assignments: {}\n{}", assignments(members), diag(node, members)),
        || {
            if !balanced(members, all) {
                since = None;
                return false;
            }
            let now = assignments(members);
            match &since {
                Some((t, s)) if *s == now => t.elapsed() >= quiet,
                _ => {
                    since = Some((Instant::now(), now));
                    false
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The node's view: admin endpoint /groups, /metrics, and `sluice groups`.

fn admin_groups(node: &Node) -> Value {
    let admin = node.admin().expect("node started with --admin");
    let (code, body) = http_get(admin, "/groups");
    assert_eq!(code, 200, "GET /groups: HTTP {code}: {body}\n{}", node.logs(30));
    json::parse(&body).unwrap_or_else(|e| panic!("GET /groups: bad JSON ({e}): {}", &body[..body.len().min(2000)]))
}

/// The /groups entry of `group`, if the node lists it.
fn admin_group(node: &Node, group: &str) -> Option<Value> {
    admin_groups(node)["groups"].arr().iter().find(|g| g["group"].str() == group).cloned()
}

/// A member's assignment as /groups shows it.
fn admin_assignment(member: &Value) -> BTreeSet<Tp> {
    let mut out = BTreeSet::new();
    for a in member["assignment"].arr() {
        for p in a["partitions"].arr() {
            out.insert((a["topic"].str().to_string(), p.i64() as i32));
        }
    }
    out
}

/// (committed, log end, lag) per partition from a /groups entry.
fn admin_offsets(g: &Value) -> BTreeMap<Tp, (i64, i64, i64)> {
    g["offsets"]
        .arr()
        .iter()
        .map(|o| {
            (
                (o["topic"].str().to_string(), o["partition"].i64() as i32),
                (o["committed"].i64(), o["log_end_offset"].i64(), o["lag"].i64()),
            )
        })
        .collect()
}

/// Value of a Prometheus sample `name{labels}` whose labels include all of `want`.
fn metric_samples(text: &str, name: &str, want: &[(&str, &str)]) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let Some(rest) = rest.strip_prefix('{') else { continue };
        let Some((labels, value)) = rest.split_once('}') else { continue };
        let mut map = BTreeMap::new();
        for kv in labels.split(',').filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                map.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
            }
        }
        if want.iter().all(|(k, v)| map.get(*k).map(String::as_str) == Some(*v)) {
            if let Ok(v) = value.split_whitespace().next().unwrap_or("").parse::<f64>() {
                out.push((map, v));
            }
        }
    }
    out
}

/// `sluice groups --admin ADDR`: per group, the header line's fields and the partition rows
/// (topic, partition) → (current offset, log end offset, lag), "-" as None.
#[derive(Debug, Default)]
struct CliGroup {
    state: Option<String>,
    members: Option<i64>,
    rows: BTreeMap<Tp, (Option<i64>, Option<i64>, Option<i64>)>,
}

fn cli_groups(node: &Node) -> (BTreeMap<String, CliGroup>, String) {
    let mut cmd = sluice_command();
    cmd.args(["groups", "--admin", node.admin().expect("admin endpoint")]);
    let out = run(cmd, None, Duration::from_secs(30));
    check(&out, "sluice groups --admin", node);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut groups: BTreeMap<String, CliGroup> = BTreeMap::new();
    let num = |s: &str| if s == "-" { None } else { s.parse::<i64>().ok() };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "GROUP" {
            continue;
        }
        if f[0] == "group" && f.len() >= 2 {
            let g = groups.entry(f[1].to_string()).or_default();
            for w in f.windows(2) {
                match w[0] {
                    "state" => g.state = Some(w[1].to_string()),
                    "members" => g.members = w[1].parse().ok(),
                    _ => {}
                }
            }
            continue;
        }
        if f.len() >= 6 {
            if let Ok(p) = f[2].parse::<i32>() {
                groups
                    .entry(f[0].to_string())
                    .or_default()
                    .rows
                    .insert((f[1].to_string(), p), (num(f[3]), num(f[4]), num(f[5])));
            }
        }
    }
    (groups, text)
}

/// grp_admin.py OP with CLIENT; returns its JSON.
fn admin_op(node: &Node, client: &str, op: &str, args: &[&str]) -> Value {
    let mut a = vec![op, "--client", client, "--bootstrap", node.bootstrap()];
    a.extend_from_slice(args);
    py_json_timeout(node, "grp_admin.py", &a, Duration::from_secs(90))
}

/// Committed offsets of `group` as a client's admin API reads them (OffsetFetch).
fn client_offsets(node: &Node, client: &str, group: &str) -> BTreeMap<Tp, i64> {
    let v = admin_op(node, client, "offsets", &["--group", group]);
    assert!(v["error"].is_null(), "{client}: list offsets of {group}: {v}\n{}", node.logs(30));
    v["offsets"]
        .arr()
        .iter()
        .map(|o| ((o.arr()[0].str().to_string(), o.arr()[1].i64() as i32), o.arr()[2].i64()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Record-stream checks.

/// Every message index in `0..n` delivered exactly once over all `recs`, and every offset of
/// every partition in `counts` exactly once. Returns the problems found.
fn exactly_once(recs: &[Rec], n: usize, topic: &str, counts: &BTreeMap<i32, i64>) -> Vec<String> {
    let mut errs = Vec::new();
    let mut by_i: HashMap<i64, Vec<&Rec>> = HashMap::new();
    let mut by_off: HashMap<(i32, i64), Vec<&Rec>> = HashMap::new();
    for r in recs {
        by_i.entry(r.i).or_default().push(r);
        by_off.entry((r.tp.1, r.offset)).or_default().push(r);
        if r.tp.0 != topic {
            errs.push(format!("record from unexpected topic {}: {r:?}", r.tp.0));
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| !by_i.contains_key(&(*i as i64))).collect();
    if !missing.is_empty() {
        errs.push(format!("{} messages never consumed, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]));
    }
    let mut dups: Vec<String> = by_i
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(i, v)| {
            let who: Vec<String> = v.iter().map(|r| format!("{}@p{}:{}", r.member, r.tp.1, r.offset)).collect();
            format!("message {i} by {}", who.join(", "))
        })
        .collect();
    dups.sort();
    if !dups.is_empty() {
        errs.push(format!(
            "{} messages consumed more than once, e.g. {}",
            dups.len(),
            dups[..dups.len().min(8)].join("; ")
        ));
    }
    for (&p, &c) in counts {
        let gaps: Vec<i64> = (0..c).filter(|o| !by_off.contains_key(&(p, *o))).collect();
        if !gaps.is_empty() {
            errs.push(format!(
                "partition {p}: {} offsets never consumed, e.g. {:?}",
                gaps.len(),
                &gaps[..gaps.len().min(10)]
            ));
        }
    }
    let stray: Vec<&(i32, i64)> = by_off.keys().filter(|(p, o)| *o >= counts.get(p).copied().unwrap_or(0)).collect();
    if !stray.is_empty() {
        errs.push(format!("records at offsets that were never produced: {:?}", &stray[..stray.len().min(10)]));
    }
    if by_i.contains_key(&-1) {
        errs.push("records whose value is not val-{i}".into());
    }
    errs
}

/// A member only receives records of partitions assigned to it at the time (replaying its
/// events in order). kafka-python calls its listener on its I/O thread, so a batch returned
/// just before a revocation may be printed just after it: there, a record of a partition
/// revoked by the event right before is tolerated.
fn only_assigned_records(m: &Member, tolerant: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let mut current: BTreeSet<Tp> = BTreeSet::new();
    let mut just_revoked: BTreeSet<Tp> = BTreeSet::new();
    for e in m.events() {
        match e["ev"].str() {
            "assign" | "revoke" | "lost" => {
                let now = tp_list(&e["now"]);
                just_revoked = current.difference(&now).cloned().collect();
                current = now;
            }
            "recs" => {
                for r in e["r"].arr() {
                    let tp = (r.arr()[0].str().to_string(), r.arr()[1].i64() as i32);
                    let tolerated = tolerant && just_revoked.contains(&tp);
                    if !current.contains(&tp) && !tolerated {
                        errs.push(format!(
                            "{} received {}-{}@{} while its assignment was {}",
                            m.name,
                            tp.0,
                            tp.1,
                            r.arr()[2].i64(),
                            show(&current)
                        ));
                        break;
                    }
                }
            }
            _ => {}
        }
        if errs.len() >= 5 {
            break;
        }
    }
    errs
}

/// Over a group's whole history (`members`: every incarnation of every member, with crashes of
/// members and of the node in between): every message in `0..n` consumed at least once, and a
/// record consumed again only if it was not committed: a redelivered offset is never below an
/// offset whose commit the coordinator had acknowledged (to anyone in the group) before.
fn no_loss_duplicates_only_uncommitted(members: &[&Member], n: usize) -> (Vec<String>, usize) {
    let mut errs = Vec::new();
    let mut recs: Vec<Rec> = members.iter().flat_map(|m| m.records()).collect();
    recs.sort_by(|a, b| a.t.partial_cmp(&b.t).unwrap());
    let mut commits: Vec<(f64, Tp, i64)> = members.iter().flat_map(|m| m.acked_commits()).collect();
    commits.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let seen: BTreeSet<i64> = recs.iter().map(|r| r.i).collect();
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(&(*i as i64))).collect();
    if !missing.is_empty() {
        errs.push(format!(
            "{} messages never consumed (lost), e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    let mut delivered: HashMap<Tp, BTreeSet<i64>> = HashMap::new();
    let mut dups = 0usize;
    let mut ci = 0usize;
    let mut committed: HashMap<Tp, i64> = HashMap::new();
    for r in &recs {
        while ci < commits.len() && commits[ci].0 < r.t {
            let (_, tp, o) = &commits[ci];
            let c = committed.entry(tp.clone()).or_insert(*o);
            *c = (*c).max(*o);
            ci += 1;
        }
        let set = delivered.entry(r.tp.clone()).or_default();
        if !set.insert(r.offset) {
            dups += 1;
            let c = committed.get(&r.tp).copied().unwrap_or(0);
            if r.offset < c && errs.len() < 10 {
                errs.push(format!(
                    "{}-{}@{} (message {}) consumed again by {} although offset {c} had been committed \
                     and acknowledged before",
                    r.tp.0, r.tp.1, r.offset, r.i, r.member
                ));
            }
        }
    }
    (errs, dups)
}

// ---------------------------------------------------------------------------------------------
// Show 1: three members, six partitions: disjoint complete assignments, exactly once.

fn three_members_exactly_once(client: &str, cores: &str) {
    three_members_exactly_once_with(client, cores, Proto::Classic)
}

/// Which group protocol members speak: classic (JoinGroup/SyncGroup, client-side
/// assignors) or KIP-848's consumer protocol (ConsumerGroupHeartbeat, server-side
/// assignors; confluent-kafka only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Classic,
    Consumer,
}

impl Proto {
    fn label(self) -> &'static str {
        match self {
            Proto::Classic => "classic",
            Proto::Consumer => "consumer",
        }
    }

    /// Member flags selecting the protocol.
    fn flags(self) -> Vec<&'static str> {
        match self {
            Proto::Classic => Vec::new(),
            Proto::Consumer => vec!["--group-protocol", "consumer"],
        }
    }
}

/// Node settings for consumer-protocol tests: members heartbeat every 500 ms (Kafka's 5 s
/// default would make every reconciliation step wait that long) and sessions of
/// `session_ms` are allowed.
fn consumer_protocol_settings(session_ms: u32) -> Vec<String> {
    [
        "group.consumer.min.session.timeout.ms=1000".to_string(),
        format!("group.consumer.session.timeout.ms={session_ms}"),
        "group.consumer.min.heartbeat.interval.ms=100".to_string(),
        "group.consumer.heartbeat.interval.ms=500".to_string(),
    ]
    .into_iter()
    .flat_map(|kv| ["--set".to_string(), kv])
    .collect()
}

fn three_members_exactly_once_with(client: &str, cores: &str, proto: Proto) {
    let settings = consumer_protocol_settings(45_000);
    let extra: Vec<&str> =
        if proto == Proto::Consumer { settings.iter().map(String::as_str).collect() } else { Vec::new() };
    let node = start_node(cores, 6, &extra);
    let dir = TempDir::new("grp");
    let topic = format!("three-{client}-{}", proto.label());
    let group = format!("g-three-{client}-{}", proto.label());
    let all = tps(&topic, 6);
    let mut counts = produce(&node, &topic, 0, 3000, &[]);
    // The members join one after another while records flow (each reads at most 400/s), so
    // partitions move mid-stream twice: the sync commits must hand each one over exactly.
    let start = |k: usize| {
        let name = format!("{client}-{k}");
        let mut flags = vec!["--commit", "sync", "--batch", "50", "--rate", "400"];
        flags.extend(proto.flags());
        Member::start(&node, &dir, client, &name, &group, &topic, &flags)
    };
    let mut members: Vec<Member> = vec![start(0)];
    for k in 1..3 {
        let refs: Vec<&Member> = members.iter().collect();
        wait_balanced(&node, &refs, &all, Duration::from_secs(60), Duration::from_millis(300));
        let before: usize = refs.iter().map(|m| m.count()).sum();
        wait_for(
            &format!("{} members to consume 300 more records", refs.len()),
            Duration::from_secs(60),
            || diag(&node, &refs),
            || refs.iter().map(|m| m.count()).sum::<usize>() >= before + 300,
        );
        let consumed: usize = refs.iter().map(|m| m.count()).sum();
        assert!(consumed < 3000, "all 3000 first messages consumed before member {k} joined: not mid-stream");
        members.push(start(k));
    }
    let refs: Vec<&Member> = members.iter().collect();
    wait_balanced(&node, &refs, &all, Duration::from_secs(60), Duration::from_secs(1));
    let moved: usize = refs
        .iter()
        .map(|m| {
            m.rebalance_events().iter().filter(|e| e["ev"].str() == "revoke" && !e["parts"].arr().is_empty()).count()
        })
        .sum();
    assert!(moved >= 2, "the joins should have revoked partitions mid-stream: {}", diag(&node, &refs));
    let sets: Vec<BTreeSet<Tp>> = refs.iter().map(|m| m.assignment().unwrap()).collect();
    for s in &sets {
        assert_eq!(s.len(), 2, "6 partitions over 3 members: 2 each, got {}", assignments(&refs));
    }

    // The node agrees: Stable, 3 members, each with the assignment its client reports.
    let g = admin_group(&node, &group).unwrap_or_else(|| panic!("/groups does not list {group}\n{}", node.logs(30)));
    assert_eq!(g["state"].str(), "Stable", "/groups: {g}");
    assert_eq!(g["protocol_type"].str(), "consumer", "/groups: {g}");
    assert_eq!(g["members"].arr().len(), 3, "/groups: {g}");
    for m in &refs {
        let am = g["members"]
            .arr()
            .iter()
            .find(|x| x["client_id"].str() == m.name)
            .unwrap_or_else(|| panic!("/groups has no member with client id {}: {g}", m.name));
        assert_eq!(admin_assignment(am), m.assignment().unwrap(), "{}: the node's view of its assignment: {g}", m.name);
    }

    // More messages while the group is stable; then all 6000 must arrive, once each.
    for (p, c) in produce(&node, &topic, 3000, 3000, &[]) {
        *counts.entry(p).or_default() += c;
    }
    let refs: Vec<&Member> = members.iter().collect();
    wait_for(
        "all 6000 messages to be consumed",
        Duration::from_secs(90),
        || diag(&node, &refs),
        || refs.iter().flat_map(|m| m.records()).map(|r| r.i).collect::<BTreeSet<_>>().len() >= 6000,
    );
    std::thread::sleep(Duration::from_secs(1)); // a duplicate would show up now
    for m in members.iter_mut() {
        m.stop();
    }
    let refs: Vec<&Member> = members.iter().collect();
    let recs: Vec<Rec> = refs.iter().flat_map(|m| m.records()).collect();
    let mut errs = exactly_once(&recs, 6000, &topic, &counts);
    for m in &refs {
        errs.extend(only_assigned_records(m, client == "kp"));
        for f in m.failed_commits() {
            errs.push(format!("{}: commit failed: {f}", m.name));
        }
    }
    assert!(errs.is_empty(), "{client}, 3 members:\n  {}\n{}", errs.join("\n  "), diag(&node, &refs));
    let per: Vec<String> = refs.iter().map(|m| format!("{}={}", m.name, m.count())).collect();
    figure(&format!("{client} ({} protocol): 6000 messages over 3 members ({})", proto.label(), per.join(" ")));

    // Every partition committed at its end, as the client's own OffsetFetch reads it.
    let committed = client_offsets(&node, client, &group);
    let want: BTreeMap<Tp, i64> = counts.iter().map(|(p, c)| ((topic.clone(), *p), *c)).collect();
    assert_eq!(committed, want, "{client}: committed offsets after consuming everything\n{}", node.logs(30));
    let g = admin_group(&node, &group).expect("group still listed");
    assert_eq!(g["state"].str(), "Empty", "after every member left: {g}");
}

/// Show 1 (confluent-kafka, two shards): 3 members split 6 partitions 2/2/2, disjoint and complete (the node's /groups agrees); 6000 messages consumed exactly once with sync commits.
#[test]
fn three_ck_members_split_six_partitions_and_consume_each_message_once() {
    three_members_exactly_once("ck", "0-1");
}

/// Show 1 (kafka-python): 3 members split 6 partitions 2/2/2, disjoint and complete; 6000 messages consumed exactly once with sync commits.
#[test]
fn three_kp_members_split_six_partitions_and_consume_each_message_once() {
    three_members_exactly_once("kp", "0");
}

// ---------------------------------------------------------------------------------------------
// Show 2: a member SIGKILLed moves its partitions after the session timeout; one that closes
// cleanly, at once.

fn killed_then_closed(client: &str) {
    killed_then_closed_with(client, Proto::Classic)
}

/// Session timeout and heartbeat interval are the client's (classic) or the broker's
/// (consumer protocol: `group.consumer.session.timeout.ms` and
/// `group.consumer.heartbeat.interval.ms`, set for the node here).
fn killed_then_closed_with(client: &str, proto: Proto) {
    const SESSION_MS: f64 = 6000.0;
    const HEARTBEAT_MS: f64 = 500.0;
    let settings = consumer_protocol_settings(SESSION_MS as u32);
    let extra: Vec<&str> =
        if proto == Proto::Consumer { settings.iter().map(String::as_str).collect() } else { Vec::new() };
    let node = start_node("0", 6, &extra);
    let dir = TempDir::new("grp");
    let topic = format!("kill-{client}-{}", proto.label());
    let group = format!("g-kill-{client}-{}", proto.label());
    let all = tps(&topic, 6);
    produce(&node, &topic, 0, 600, &[]);
    let mut flags = match proto {
        Proto::Classic => vec!["--session-timeout-ms", "6000", "--heartbeat-ms", "500", "--commit", "sync"],
        Proto::Consumer => vec!["--commit", "sync"],
    };
    flags.extend(proto.flags());
    let a = Member::start(&node, &dir, client, &format!("{client}-a"), &group, &topic, &flags);
    let mut b = Member::start(&node, &dir, client, &format!("{client}-b"), &group, &topic, &flags);
    let mut c = Member::start(&node, &dir, client, &format!("{client}-c"), &group, &topic, &flags);
    wait_balanced(&node, &[&a, &b, &c], &all, Duration::from_secs(60), Duration::from_secs(1));
    let (a_n, b_n) = (a.rebalance_events().len(), b.rebalance_events().len());

    // SIGKILL c: no LeaveGroup. Its partitions stay unassigned until its session expires.
    let killed_at = now_ms();
    c.kill();
    wait_for(
        "a and b to take over the killed member's partitions",
        Duration::from_secs_f64(SESSION_MS / 1000.0 + 20.0),
        || format!("assignments: {}\n{}", assignments(&[&a, &b]), diag(&node, &[&a, &b, &c])),
        || balanced(&[&a, &b], &all),
    );
    // The first sign of the rebalance at a or b (their revocation, or the assignment).
    let first_change = [&a, &b]
        .iter()
        .zip([a_n, b_n])
        .filter_map(|(m, n)| m.rebalance_events().get(n).map(|e| e["t"].f64()))
        .fold(f64::INFINITY, f64::min);
    let moved = a.last_assign_t().unwrap().max(b.last_assign_t().unwrap());
    figure(&format!(
        "{client} ({} protocol): SIGKILLed member: rebalance began {:.0} ms, partitions moved {:.0} ms after the kill \
         (session timeout {SESSION_MS} ms)",
        proto.label(),
        first_change - killed_at,
        moved - killed_at
    ));
    assert!(
        first_change - killed_at >= SESSION_MS - HEARTBEAT_MS - 1000.0,
        "{client}: the group rebalanced {:.0} ms after a member was SIGKILLed: before its session \
         timeout ({SESSION_MS} ms) could have expired\n{}",
        first_change - killed_at,
        diag(&node, &[&a, &b])
    );
    assert!(
        moved - killed_at <= SESSION_MS + 8000.0,
        "{client}: the killed member's partitions moved only {:.0} ms after the kill (session timeout {SESSION_MS} ms)\n{}",
        moved - killed_at,
        diag(&node, &[&a, &b])
    );

    // b closes cleanly (LeaveGroup): a gets everything, far sooner than a session timeout.
    let a_n = a.rebalance_events().len();
    b.stop();
    let closing = b.events_of("closing")[0]["t"].f64();
    wait_for(
        "a to hold all 6 partitions after b left",
        Duration::from_secs(30),
        || format!("assignments: {}\n{}", assignments(&[&a]), diag(&node, &[&a, &b])),
        || a.assignment().as_ref() == Some(&all) && a.rebalance_events().len() > a_n,
    );
    let took = a.last_assign_t().unwrap() - closing;
    figure(&format!(
        "{client} ({} protocol): clean leave: partitions moved {took:.0} ms after close() began",
        proto.label()
    ));
    assert!(
        took < SESSION_MS / 2.0,
        "{client}: after a clean close() the partitions moved only after {took:.0} ms (session timeout \
         {SESSION_MS} ms): the leave was not acted on\n{}",
        diag(&node, &[&a, &b])
    );
    let g = admin_group(&node, &group).expect("group listed");
    assert_eq!((g["state"].str(), g["members"].arr().len()), ("Stable", 1), "/groups after two members went: {g}");
}

/// Show 2 (confluent-kafka): a SIGKILLed member's partitions move after session.timeout.ms (not before); a clean close() moves them in < half of it.
#[test]
fn ck_killed_member_moves_after_session_timeout_closed_member_at_once() {
    killed_then_closed("ck");
}

/// Show 2 (kafka-python): a SIGKILLed member's partitions move after session.timeout.ms (not before); a clean close() moves them in < half of it.
#[test]
fn kp_killed_member_moves_after_session_timeout_closed_member_at_once() {
    killed_then_closed("kp");
}

// ---------------------------------------------------------------------------------------------
// Show 3: a static member restarted within its session timeout: no rebalance.

fn static_member_restart(client: &str) {
    const SESSION_MS: f64 = 8000.0;
    let node = start_node("0-1", 6, &[]);
    let dir = TempDir::new("grp");
    let topic = format!("static-{client}");
    let group = format!("g-static-{client}");
    let all = tps(&topic, 6);
    produce(&node, &topic, 0, 600, &[]);
    let member = |name: &str| {
        let inst = format!("inst-{name}");
        Member::start(
            &node,
            &dir,
            client,
            name,
            &group,
            &topic,
            &["--instance-id", &inst, "--session-timeout-ms", "8000", "--heartbeat-ms", "500", "--commit", "sync"],
        )
    };
    let mut ms: Vec<Member> = ["s-a", "s-b", "s-c"].iter().map(|n| member(&format!("{client}-{n}"))).collect();
    let refs: Vec<&Member> = ms.iter().collect();
    wait_balanced(&node, &refs, &all, Duration::from_secs(60), Duration::from_secs(1));
    let g = admin_group(&node, &group).expect("group listed");
    let generation = g["generation"].i64();
    let leader = g["leader"].str().to_string();
    let insts: BTreeSet<String> =
        g["members"].arr().iter().filter_map(|m| m["group_instance_id"].opt_str().map(str::to_string)).collect();
    assert_eq!(insts.len(), 3, "/groups shows the members' group.instance.id: {g}");
    // Restart a member that is not the leader (a rejoining static leader may legitimately
    // make the group recompute its assignment).
    let victim = ms
        .iter()
        .position(|m| {
            g["members"].arr().iter().any(|x| x["client_id"].str() == m.name && x["member_id"].str() != leader)
        })
        .expect("a non-leader member");
    let before = ms[victim].assignment().unwrap();
    let others: Vec<usize> = (0..3).filter(|&k| k != victim).collect();
    let counts_before: Vec<usize> = others.iter().map(|&k| ms[k].rebalance_events().len()).collect();

    let killed_at = now_ms();
    ms[victim].kill();
    let name = ms[victim].name.clone();
    let restarted = member(&name);
    wait_for(
        "the restarted static member to get its assignment",
        Duration::from_secs(30),
        || diag(&node, &[&restarted]),
        || restarted.last_assign_t().is_some(),
    );
    let back = restarted.last_assign_t().unwrap() - killed_at;
    figure(&format!(
        "{client}: static member restarted and assigned {back:.0} ms after SIGKILL (session {SESSION_MS} ms)"
    ));
    assert!(
        back < SESSION_MS,
        "{client}: restart took {back:.0} ms, not within the session timeout: test setup too slow"
    );
    assert_eq!(
        restarted.assignment().unwrap(),
        before,
        "{client}: the restarted static member got a different assignment\n{}",
        diag(&node, &[&restarted])
    );
    // Past the old incarnation's session timeout too: its expiry must not rebalance either.
    let wait = Duration::from_secs_f64(((killed_at + SESSION_MS + 2500.0 - now_ms()) / 1000.0).max(2.5));
    std::thread::sleep(wait);
    for (k, &n0) in others.iter().zip(&counts_before) {
        let evs = ms[*k].rebalance_events();
        assert_eq!(
            evs.len(),
            n0,
            "{client}: member {} saw a rebalance when the static member {name} restarted: {:?}\n{}",
            ms[*k].name,
            evs[n0..].iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            diag(&node, &[&ms[*k], &restarted])
        );
    }
    // One assignment, nothing taken away (kafka-python calls its revoke listener with nothing
    // before its first join: not a revocation).
    let changes: Vec<String> = restarted
        .rebalance_events()
        .iter()
        .filter(|e| e["ev"].str() == "assign" || !e["parts"].arr().is_empty())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(changes.len(), 1, "{client}: the restarted member's rebalance events: {changes:?}");
    let g = admin_group(&node, &group).expect("group listed");
    assert_eq!(g["state"].str(), "Stable", "/groups: {g}");
    assert_eq!(g["generation"].i64(), generation, "{client}: the generation changed: a rebalance happened: {g}");
    assert_eq!(g["members"].arr().len(), 3, "/groups: {g}");
    let insts_after: BTreeSet<String> =
        g["members"].arr().iter().filter_map(|m| m["group_instance_id"].opt_str().map(str::to_string)).collect();
    assert_eq!(insts_after, insts, "/groups: {g}");
    ms[victim] = restarted;
    for m in ms.iter_mut() {
        m.stop();
    }
}

/// Show 3 (confluent-kafka): a static member (group.instance.id) SIGKILLed and restarted within session.timeout.ms gets the same partitions; nobody else sees a rebalance; generation unchanged.
#[test]
fn ck_static_member_restart_keeps_assignment_without_rebalance() {
    static_member_restart("ck");
}

/// Show 3 (kafka-python): a static member (group_instance_id) SIGKILLed and restarted within the session timeout gets the same partitions; nobody else sees a rebalance.
#[test]
fn kp_static_member_restart_keeps_assignment_without_rebalance() {
    static_member_restart("kp");
}

// ---------------------------------------------------------------------------------------------
// Show 4: auto / sync / async commits, node and consumers killed mid-stream.

/// Show 4: groups committing auto/sync/async (ck and kp) survive a node SIGKILL + restart mid-stream and a SIGKILL of their consumers: resume at the committed offsets, nothing lost, only uncommitted records consumed twice.
#[test]
fn commits_survive_node_and_consumer_crashes_mid_stream() {
    // Enough that no group (350 msg/s) reaches the end while a slower one, delayed by the
    // node restart, catches up to 1800: 4000 was too few on a loaded machine.
    const N: usize = 10_000;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A fixed port, so the running consumers find the node again after its restart.
    let mut node = start_node("0-1", 6, &["--listen", &listen]);
    let dir = TempDir::new("grp");
    let topic = "commits";
    produce(&node, topic, 0, N, &[]);
    let modes: Vec<(&str, &str)> =
        vec![("ck", "auto"), ("ck", "sync"), ("ck", "async"), ("kp", "auto"), ("kp", "sync"), ("kp", "async")];
    let group = |c: &str, m: &str| format!("g-commit-{c}-{m}");
    let start = |node: &Node, c: &str, m: &str, inc: usize, rate: &str| {
        Member::start(
            node,
            &dir,
            c,
            &format!("{c}-{m}-{inc}"),
            &group(c, m),
            topic,
            &[
                "--commit",
                m,
                "--auto-commit-interval-ms",
                "300",
                "--rate",
                rate,
                "--batch",
                "40",
                "--session-timeout-ms",
                "6000",
            ],
        )
    };
    let first: Vec<Member> = modes.iter().map(|(c, m)| start(&node, c, m, 1, "350")).collect();
    let refs: Vec<&Member> = first.iter().collect();
    wait_for(
        "every group to consume 600 records",
        Duration::from_secs(90),
        || diag(&node, &refs),
        || refs.iter().all(|m| m.count() >= 600),
    );

    // The node dies mid-stream and comes back on the same port.
    node.kill();
    let restarted_at = now_ms();
    node.restart();
    assert_eq!(node.bootstrap(), listen, "the node must come back on its port");
    wait_for(
        "every group to consume 1800 records (after the node restart)",
        Duration::from_secs(120),
        || diag(&node, &refs),
        || refs.iter().all(|m| m.count() >= 1800),
    );
    for m in &refs {
        let after = m.records().iter().filter(|r| r.t > restarted_at).count();
        assert!(after > 0, "{}: consumed nothing after the node restart\n{}", m.name, diag(&node, &[m]));
    }

    // The consumers die mid-stream too; new ones take over from the committed offsets.
    let mut first = first;
    for m in first.iter_mut() {
        assert!(m.count() < N, "{}: already done: not mid-stream", m.name);
        m.kill();
    }
    let second: Vec<Member> = modes.iter().map(|(c, m)| start(&node, c, m, 2, "0")).collect();
    for (k, (c, m)) in modes.iter().enumerate() {
        let both = [&first[k], &second[k]];
        wait_for(
            &format!("group {} to have consumed all {N} messages", group(c, m)),
            Duration::from_secs(120),
            || diag(&node, &both),
            || both.iter().flat_map(|m| m.records()).map(|r| r.i).collect::<BTreeSet<_>>().len() >= N,
        );
    }
    let mut second = second;
    for m in second.iter_mut() {
        m.stop();
    }
    let mut failures = Vec::new();
    for (k, (c, m)) in modes.iter().enumerate() {
        let (old, new) = (&first[k], &second[k]);
        let (errs, dups) = no_loss_duplicates_only_uncommitted(&[old, new], N);
        // The new incarnation starts each partition where the group's last acknowledged commit
        // left it (or a little later, if a commit in flight at the kill landed).
        let mut last_commit: HashMap<Tp, i64> = HashMap::new();
        for (_, tp, o) in old.acked_commits() {
            let e = last_commit.entry(tp).or_insert(o);
            *e = (*e).max(o);
        }
        let mut first_new: BTreeMap<Tp, i64> = BTreeMap::new();
        for r in new.records() {
            first_new.entry(r.tp.clone()).or_insert(r.offset);
        }
        let resumed: Vec<String> = first_new
            .iter()
            .map(|(tp, o)| format!("p{}: committed {:?} → first {o}", tp.1, last_commit.get(tp)))
            .collect();
        figure(&format!("{c}/{m}: {dups} records consumed twice; restart points: {}", resumed.join(", ")));
        for e in errs {
            failures.push(format!("{c}/{m}: {e}"));
        }
        if new.errors().iter().any(|e| e["fatal"].bool()) {
            failures.push(format!("{c}/{m}: the new consumer failed: {:?}", new.errors()));
        }
        if *m == "sync" && dups > 6 * 40 {
            failures.push(format!("{c}/{m}: {dups} duplicates: more than one uncommitted batch per partition"));
        }
    }
    let all: Vec<&Member> = first.iter().chain(second.iter()).collect();
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), diag(&node, &all));
}

// ---------------------------------------------------------------------------------------------
// Show 5: auto.offset.reset.

/// Show 5: auto.offset.reset earliest/latest/none (ck and kp) with no committed offset, a committed offset in range, one past the log end, and one below the log start (deleted by retention): as in Kafka.
#[test]
fn auto_offset_reset_earliest_latest_none_as_in_kafka() {
    // Small segments and a small retention.bytes, so retention moves a log's start quickly.
    let node = start_node(
        "0",
        1,
        &[
            "--set",
            "log.segment.bytes=16384",
            "--set",
            "log.retention.bytes=32768",
            "--set",
            "log.retention.check.interval.ms=200",
        ],
    );
    let dir = TempDir::new("grp");
    let (rt, old) = ("rt", "rt-old");
    produce(&node, rt, 0, 100, &["--partition", "0"]);
    let produce_big = |start: usize, count: usize| {
        let (s, c) = (start.to_string(), count.to_string());
        let v = admin_op(
            &node,
            "ck",
            "produce",
            &[
                "--topic",
                old,
                "--start",
                &s,
                "--count",
                &c,
                "--value-size",
                "1000",
                "--partition",
                "0",
                "--one-per-batch",
            ],
        );
        assert_eq!(v["acked"].i64(), count as i64, "producing to {old}: {v}");
    };
    produce_big(0, 20);

    // (case, topic, committed offset to set first, reset policy)
    let cases: Vec<(&str, &str, Option<i64>, &str)> = vec![
        ("fresh-earliest", rt, None, "earliest"),
        ("fresh-latest", rt, None, "latest"),
        ("fresh-none", rt, None, "none"),
        ("inrange-earliest", rt, Some(40), "earliest"),
        ("inrange-latest", rt, Some(40), "latest"),
        ("inrange-none", rt, Some(40), "none"),
        ("pastend-earliest", rt, Some(1_000_000), "earliest"),
        ("pastend-latest", rt, Some(1_000_000), "latest"),
        ("pastend-none", rt, Some(1_000_000), "none"),
        ("deleted-earliest", old, Some(5), "earliest"),
        ("deleted-latest", old, Some(5), "latest"),
        ("deleted-none", old, Some(5), "none"),
    ];
    let clients = ["ck", "kp"];
    for client in clients {
        for (case, topic, committed, _) in &cases {
            if let Some(o) = committed {
                let g = format!("reset-{client}-{case}");
                let set = format!("{topic}:0:{o}");
                let v = admin_op(&node, client, "alter-offsets", &["--group", &g, "--set", &set]);
                assert!(
                    v["error"].is_null() && v["results"].arr().iter().all(|r| r.arr()[2].is_null()),
                    "{client}: committing {set} for {g} through the admin API: {v}\n{}",
                    node.logs(30)
                );
            }
        }
    }
    let g = format!("reset-kp-{}", "inrange-none");
    assert_eq!(
        client_offsets(&node, "ck", &g),
        BTreeMap::from([((rt.to_string(), 0), 40)]),
        "offsets of {g} read back"
    );

    // Retention deletes rt-old's first segments: committed offset 5 falls below the log start.
    produce_big(20, 100);
    let mut low = 0;
    wait_for(
        "retention to move rt-old's log start past offset 5",
        Duration::from_secs(30),
        || node.logs(30),
        || {
            let v = admin_op(&node, "ck", "watermarks", &["--topic", old]);
            low = v["partitions"]["0"].arr()[0].i64();
            low > 5
        },
    );
    figure(&format!("rt-old: log start {low} after retention (committed offset 5)"));

    let mut members: Vec<(String, &str, &str, Member)> = Vec::new();
    for client in clients {
        for (case, topic, _, reset) in &cases {
            let name = format!("{client}-{case}");
            let g = format!("reset-{client}-{case}");
            let mut flags = vec!["--reset", *reset, "--commit", "none", "--duration", "120"];
            if *reset == "none" {
                flags.push("--stop-on-error");
            }
            members.push((name.clone(), case, topic, Member::start(&node, &dir, client, &name, &g, topic, &flags)));
        }
    }
    let all_refs: Vec<&Member> = members.iter().map(|m| &m.3).collect();
    wait_for(
        "every consumer to be assigned its partition (or to fail, for reset=none)",
        Duration::from_secs(90),
        || diag(&node, &all_refs),
        || all_refs.iter().all(|m| m.assignment().is_some() || !m.errors().is_empty()),
    );
    // Let "latest" resolve the log end, and "none" report its error, before new messages come.
    std::thread::sleep(Duration::from_secs(4));
    let old_end = 120i64;
    for (name, case, _, m) in &members {
        if case.ends_with("-latest") && !case.starts_with("inrange") {
            assert!(
                m.records().is_empty(),
                "{name}: consumed {} old records before any new message",
                m.records().len()
            );
        }
    }
    produce(&node, rt, 100, 10, &["--partition", "0"]);
    produce_big(120, 2);

    let mut failures = Vec::new();
    for (name, case, topic, m) in &members {
        let expect_error = case.ends_with("-none") && !case.starts_with("inrange");
        let last = if *topic == rt { 109 } else { old_end + 1 };
        if expect_error {
            continue;
        }
        let t0 = Instant::now();
        while !m.records().iter().any(|r| r.offset == last) && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !m.records().iter().any(|r| r.offset == last) {
            failures.push(format!("{name}: never got the new message at offset {last}"));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for (name, case, topic, m) in members.iter_mut() {
        let recs = m.records();
        let first = recs.first().map(|r| r.offset);
        let errors = m.errors();
        let client = &name[..2];
        let expect_first: Option<i64> = match *case {
            "fresh-earliest" | "pastend-earliest" => Some(0),
            "fresh-latest" | "pastend-latest" => Some(100),
            "inrange-earliest" | "inrange-latest" | "inrange-none" => Some(40),
            "deleted-earliest" => Some(low),
            "deleted-latest" => Some(old_end),
            _ => None, // an error
        };
        match expect_first {
            Some(want) => {
                // "deleted-earliest": retention may move the start again while it reads; the
                // first record is at the log start it saw, which is never below `low`.
                let ok =
                    if *case == "deleted-earliest" { first.is_some_and(|f| f >= want) } else { first == Some(want) };
                if !ok {
                    failures.push(format!(
                        "{name} ({topic}, {case}): first record at offset {first:?}, want {want}{}",
                        if errors.is_empty() { String::new() } else { format!("; errors: {errors:?}") }
                    ));
                }
                let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
                if offsets.windows(2).any(|w| w[1] != w[0] + 1) {
                    failures.push(format!("{name}: offsets not consecutive: {offsets:?}"));
                }
            }
            None => {
                if !recs.is_empty() {
                    failures.push(format!(
                        "{name} ({case}): auto.offset.reset=none consumed {} records (first at {first:?}) instead of failing",
                        recs.len()
                    ));
                }
                let known =
                    ["_AUTO_OFFSET_RESET", "NoOffsetForPartitionError", "OffsetOutOfRangeError", "OFFSET_OUT_OF_RANGE"];
                let names: Vec<&str> = errors.iter().filter_map(|e| e["err_name"].opt_str()).collect();
                figure(&format!("{name}: reset=none reported {names:?}"));
                if !errors.iter().any(|e| known.contains(&e["err_name"].opt_str().unwrap_or(""))) {
                    failures.push(format!(
                        "{name} ({case}): no 'no offset / out of range' error reported ({client}): {errors:?}"
                    ));
                }
            }
        }
        if m.bg.is_running() {
            m.request_stop();
        }
    }
    for (_, _, _, m) in members.iter_mut() {
        if m.bg.wait(Duration::from_secs(60)).is_none() {
            failures.push(format!("{} did not exit after its stop file", m.name));
        }
    }
    let all_refs: Vec<&Member> = members.iter().map(|m| &m.3).collect();
    assert!(failures.is_empty(), "auto.offset.reset:\n  {}\n{}", failures.join("\n  "), diag(&node, &all_refs));
}

// ---------------------------------------------------------------------------------------------
// Show 6: cooperative-sticky.

/// Show 6 (confluent-kafka, cooperative-sticky): a third member joining moves only the 2 partitions it takes (incremental revokes of just those, never a full revoke); when it leaves, the others only gain.
#[test]
fn cooperative_sticky_moves_only_the_partitions_that_change_owner() {
    let node = start_node("0-1", 6, &[]);
    let dir = TempDir::new("grp");
    let topic = "coop";
    let group = "g-coop";
    let all = tps(topic, 6);
    produce(&node, topic, 0, 600, &[]);
    let flags = ["--strategy", "cooperative-sticky", "--commit", "sync", "--session-timeout-ms", "6000"];
    let a = Member::start(&node, &dir, "ck", "coop-a", group, topic, &flags);
    let b = Member::start(&node, &dir, "ck", "coop-b", group, topic, &flags);
    wait_balanced(&node, &[&a, &b], &all, Duration::from_secs(60), Duration::from_secs(1));
    let (a0, b0) = (a.assignment().unwrap(), b.assignment().unwrap());
    let (na, nb) = (a.rebalance_events().len(), b.rebalance_events().len());

    let mut c = Member::start(&node, &dir, "ck", "coop-c", group, topic, &flags);
    wait_balanced(&node, &[&a, &b, &c], &all, Duration::from_secs(60), Duration::from_secs(1));
    let c1 = c.assignment().unwrap();
    let mut errs = Vec::new();
    let mut revoked_total: BTreeSet<Tp> = BTreeSet::new();
    for (m, before, n) in [(&a, &a0, na), (&b, &b0, nb)] {
        let after = m.assignment().unwrap();
        if !after.is_subset(before) {
            errs.push(format!("{}: gained partitions: {} → {}", m.name, show(before), show(&after)));
        }
        for e in &m.rebalance_events()[n..] {
            let parts = tp_list(&e["parts"]);
            if e["proto"].str() != "COOPERATIVE" {
                errs.push(format!("{}: rebalance protocol {} (want COOPERATIVE): {e}", m.name, e["proto"]));
            }
            match e["ev"].str() {
                "revoke" => {
                    if parts == *before {
                        errs.push(format!(
                            "{}: full revoke of {} (cooperative must revoke only what moves)",
                            m.name,
                            show(&parts)
                        ));
                    }
                    if !parts.is_subset(&c1) {
                        errs.push(format!(
                            "{}: revoked {} although the newcomer took only {}",
                            m.name,
                            show(&parts),
                            show(&c1)
                        ));
                    }
                    revoked_total.extend(parts);
                }
                "assign" => {
                    if !parts.is_empty() {
                        errs.push(format!("{}: was assigned {} while a member joined", m.name, show(&parts)));
                    }
                }
                other => errs.push(format!("{}: unexpected {other}: {e}", m.name)),
            }
        }
    }
    if revoked_total != c1 {
        errs.push(format!("revoked from a and b: {}, taken by c: {}", show(&revoked_total), show(&c1)));
    }
    assert!(
        errs.is_empty(),
        "cooperative-sticky, member joins:\n  {}\n{}",
        errs.join("\n  "),
        diag(&node, &[&a, &b, &c])
    );
    figure(&format!(
        "cooperative join: a {} → {}, b {} → {}, c took {}",
        show(&a0),
        show(&a.assignment().unwrap()),
        show(&b0),
        show(&b.assignment().unwrap()),
        show(&c1)
    ));

    // c leaves: a and b only gain (no revocation at all).
    let (na, nb) = (a.rebalance_events().len(), b.rebalance_events().len());
    let (a1, b1) = (a.assignment().unwrap(), b.assignment().unwrap());
    c.stop();
    wait_balanced(&node, &[&a, &b], &all, Duration::from_secs(30), Duration::from_millis(500));
    for (m, before, n) in [(&a, &a1, na), (&b, &b1, nb)] {
        let after = m.assignment().unwrap();
        if !before.is_subset(&after) {
            errs.push(format!("{}: lost partitions when a member left: {} → {}", m.name, show(before), show(&after)));
        }
        for e in &m.rebalance_events()[n..] {
            if e["ev"].str() != "assign" && !tp_list(&e["parts"]).is_empty() {
                errs.push(format!("{}: {} when a member left: {e}", m.name, e["ev"]));
            }
        }
    }
    assert!(
        errs.is_empty(),
        "cooperative-sticky, member leaves:\n  {}\n{}",
        errs.join("\n  "),
        diag(&node, &[&a, &b, &c])
    );
    let mut a = a;
    let mut b = b;
    a.stop();
    b.stop();
}

// ---------------------------------------------------------------------------------------------
// Show 7: lag, and the group admin APIs.

/// Show 7: after producing N and consuming M the lag is N-M per partition and in total, in /groups, /metrics, `sluice groups` and both clients' list offsets; still after a restart (SIGTERM).
#[test]
fn lag_after_producing_n_and_consuming_m_is_shown_everywhere() {
    let mut node = start_node("0-1", 6, &[]);
    let dir = TempDir::new("grp");
    let topic = "lag";
    let group = "g-lag";
    // Round 1: everything consumed and committed (lag 0 on every partition).
    let c1 = produce(&node, topic, 0, 600, &[]);
    assert_eq!(c1.len(), 6, "600 keyed messages reach all 6 partitions: {c1:?}");
    let mut m1 =
        Member::start(&node, &dir, "ck", "lag-ck", group, topic, &["--commit", "sync", "--max-records", "600"]);
    assert!(
        m1.bg.wait(Duration::from_secs(90)).is_some_and(|s| s.success()),
        "lag-ck did not finish\n{}",
        diag(&node, &[&m1])
    );
    assert_eq!(m1.count(), 600, "lag-ck consumed {}\n{}", m1.count(), diag(&node, &[&m1]));
    // Round 2: N more, M consumed by kafka-python.
    const N: i64 = 600;
    const M: i64 = 250;
    let c2 = produce(&node, topic, 600, N as usize, &[]);
    let mut m2 =
        Member::start(&node, &dir, "kp", "lag-kp", group, topic, &["--commit", "sync", "--max-records", "250"]);
    assert!(
        m2.bg.wait(Duration::from_secs(90)).is_some_and(|s| s.success()),
        "lag-kp did not finish\n{}",
        diag(&node, &[&m2])
    );
    assert_eq!(m2.count() as i64, M, "lag-kp consumed {}\n{}", m2.count(), diag(&node, &[&m2]));

    let mut committed: BTreeMap<Tp, i64> = c1.iter().map(|(p, c)| ((topic.to_string(), *p), *c)).collect();
    for (_, tp, o) in m2.acked_commits() {
        let e = committed.get_mut(&tp).expect("known partition");
        *e = (*e).max(o);
    }
    let leo: BTreeMap<Tp, i64> = (0..6)
        .map(|p| ((topic.to_string(), p), c1.get(&p).copied().unwrap_or(0) + c2.get(&p).copied().unwrap_or(0)))
        .collect();
    let lag: BTreeMap<Tp, i64> = leo.iter().map(|(tp, e)| (tp.clone(), e - committed[tp])).collect();
    assert_eq!(lag.values().sum::<i64>(), N - M, "the clients' own record: committed {committed:?}, log ends {leo:?}");

    let check_all = |node: &Node, when: &str| {
        // Admin endpoint /groups.
        let g = admin_group(node, group)
            .unwrap_or_else(|| panic!("{when}: /groups does not list {group}\n{}", node.logs(30)));
        assert_eq!(g["state"].str(), "Empty", "{when}: {g}");
        assert!(g["members"].arr().is_empty(), "{when}: {g}");
        let offs = admin_offsets(&g);
        let want: BTreeMap<Tp, (i64, i64, i64)> =
            leo.keys().map(|tp| (tp.clone(), (committed[tp], leo[tp], lag[tp]))).collect();
        assert_eq!(offs, want, "{when}: /groups offsets (committed, log end, lag)\n{g}");
        // Prometheus metrics.
        let (code, text) = http_get(node.admin().unwrap(), "/metrics");
        assert_eq!(code, 200);
        let lags = metric_samples(&text, "sluice_group_lag", &[("group", group), ("topic", topic)]);
        let got: BTreeMap<i32, i64> = lags.iter().map(|(l, v)| (l["partition"].parse().unwrap(), *v as i64)).collect();
        let want_lag: BTreeMap<i32, i64> = lag.iter().map(|(tp, l)| (tp.1, *l)).collect();
        assert_eq!(got, want_lag, "{when}: sluice_group_lag samples");
        let com = metric_samples(&text, "sluice_group_committed_offset", &[("group", group), ("topic", topic)]);
        let got: BTreeMap<i32, i64> = com.iter().map(|(l, v)| (l["partition"].parse().unwrap(), *v as i64)).collect();
        let want_com: BTreeMap<i32, i64> = committed.iter().map(|(tp, c)| (tp.1, *c)).collect();
        assert_eq!(got, want_com, "{when}: sluice_group_committed_offset samples");
        // The CLI.
        let (groups, text) = cli_groups(node);
        let cg = groups.get(group).unwrap_or_else(|| panic!("{when}: `sluice groups` does not show {group}:\n{text}"));
        assert_eq!(cg.state.as_deref(), Some("Empty"), "{when}: `sluice groups`:\n{text}");
        assert_eq!(cg.members, Some(0), "{when}: `sluice groups`:\n{text}");
        let rows: BTreeMap<Tp, (Option<i64>, Option<i64>, Option<i64>)> =
            leo.keys().map(|tp| (tp.clone(), (Some(committed[tp]), Some(leo[tp]), Some(lag[tp])))).collect();
        assert_eq!(cg.rows, rows, "{when}: `sluice groups` rows (current, log end, lag):\n{text}");
        // Both clients' list offsets (OffsetFetch).
        for client in ["ck", "kp"] {
            assert_eq!(client_offsets(node, client, group), committed, "{when}: {client} list offsets");
        }
    };
    check_all(&node, "after consuming");
    figure(&format!("lag per partition {lag:?}, total {}", N - M));
    node.restart();
    check_all(&node, "after a restart");
}

/// Show 7: ListGroups / DescribeGroups / DeleteGroups / OffsetDelete through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient: states, members, assignments; NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC.
#[test]
fn group_admin_apis_list_describe_delete_and_offset_delete() {
    let node = start_node("0-1", 6, &[]);
    let dir = TempDir::new("grp");
    let topic = "adm";
    let all = tps(topic, 6);
    let c = produce(&node, topic, 0, 600, &[]);
    assert_eq!(c.len(), 6, "600 keyed messages reach all 6 partitions: {c:?}");
    let (active, idle, ghost) = ("adm-active", "adm-idle", "adm-never-existed");
    // An idle group: consumed everything, committed, left.
    let mut m =
        Member::start(&node, &dir, "ck", "adm-idle-ck", idle, topic, &["--commit", "sync", "--max-records", "600"]);
    assert!(m.bg.wait(Duration::from_secs(90)).is_some_and(|s| s.success()), "{}", diag(&node, &[&m]));
    let idle_offsets: BTreeMap<Tp, i64> = c.iter().map(|(p, n)| ((topic.to_string(), *p), *n)).collect();
    // An active group: two members, one of each client, both range.
    let mut x = Member::start(&node, &dir, "ck", "adm-x", active, topic, &["--commit", "sync"]);
    let mut y = Member::start(&node, &dir, "kp", "adm-y", active, topic, &["--commit", "sync"]);
    wait_balanced(&node, &[&x, &y], &all, Duration::from_secs(60), Duration::from_secs(1));
    wait_for(
        "the active group to commit every partition",
        Duration::from_secs(30),
        || diag(&node, &[&x, &y]),
        || client_offsets(&node, "ck", active).len() == 6,
    );
    let mut errs: Vec<String> = Vec::new();
    for client in ["ck", "kp"] {
        // ListGroups
        let v = admin_op(&node, client, "list", &[]);
        let states: BTreeMap<String, String> = v["groups"]
            .arr()
            .iter()
            .map(|g| (g["group"].str().to_string(), g["state"].opt_str().unwrap_or("?").to_string()))
            .collect();
        for (g, want) in [(active, "Stable"), (idle, "Empty")] {
            match states.get(g) {
                None => errs.push(format!("{client} list: {g} missing: {v}")),
                // kafka-python gets states only from ListGroups v4+; a "?"/None means not sent.
                Some(s) if s != want && s != "?" => errs.push(format!("{client} list: {g} is {s}, want {want}")),
                _ => {}
            }
        }
        if states.contains_key(ghost) {
            errs.push(format!("{client} list: shows {ghost}"));
        }
        // DescribeGroups
        let v = admin_op(&node, client, "describe", &["--group", active, "--group", idle, "--group", ghost]);
        let d = &v["groups"][active];
        if d["state"].opt_str() != Some("Stable") || d["protocol"].opt_str() != Some("range") {
            errs.push(format!("{client} describe {active}: {d}"));
        }
        let members = d["members"].arr();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for mem in members {
            let cid = mem["client_id"].str().to_string();
            let asg = tp_list(&mem["assignment"]);
            let who = [&x, &y].into_iter().find(|m| m.name == cid);
            match who {
                None => errs.push(format!("{client} describe {active}: unknown member {mem}")),
                Some(w) => {
                    if Some(asg.clone()) != w.assignment() {
                        errs.push(format!(
                            "{client} describe {active}: {cid} assigned {} by describe, {} by itself",
                            show(&asg),
                            w.assignment().map(|s| show(&s)).unwrap_or_default()
                        ));
                    }
                }
            }
            if mem["host"].opt_str().unwrap_or("").is_empty() || mem["member_id"].opt_str().unwrap_or("").is_empty() {
                errs.push(format!("{client} describe {active}: member without host or id: {mem}"));
            }
            seen.insert(cid);
        }
        if seen != BTreeSet::from(["adm-x".to_string(), "adm-y".to_string()]) {
            errs.push(format!("{client} describe {active}: members {seen:?}"));
        }
        let d = &v["groups"][idle];
        if d["state"].opt_str() != Some("Empty") || !d["members"].arr().is_empty() {
            errs.push(format!("{client} describe {idle}: {d}"));
        }
        let d = &v["groups"][ghost];
        let dead = d["state"].opt_str() == Some("Dead") || d["error"].opt_str() == Some("GROUP_ID_NOT_FOUND");
        if !dead {
            errs.push(format!("{client} describe {ghost}: want Dead or GROUP_ID_NOT_FOUND, got {d}"));
        }
        // DeleteGroups on a group with members: NON_EMPTY_GROUP.
        let v = admin_op(&node, client, "delete", &["--group", active]);
        let r = &v["results"][active];
        if r["error"].opt_str() != Some("NON_EMPTY_GROUP") || r["code"].i64() != 68 {
            errs.push(format!("{client} delete {active} (2 members): want NON_EMPTY_GROUP (68), got {r}"));
        }
    }
    // OffsetDelete (kafka-python only): refused for a topic the group consumes, allowed on an idle group.
    let v = admin_op(&node, "kp", "delete-offsets", &["--group", active, "--partitions", "adm:0"]);
    let refused = v["error"].opt_str() == Some("GROUP_SUBSCRIBED_TO_TOPIC")
        || v["results"].arr().iter().any(|r| r.arr()[2].opt_str() == Some("GROUP_SUBSCRIBED_TO_TOPIC"));
    if !refused {
        errs.push(format!("kp delete-offsets {active} adm:0: want GROUP_SUBSCRIBED_TO_TOPIC, got {v}"));
    }
    let v = admin_op(&node, "kp", "delete-offsets", &["--group", idle, "--partitions", "adm:0"]);
    if !v["error"].is_null() || v["results"].arr().iter().any(|r| !r.arr()[2].is_null()) {
        errs.push(format!("kp delete-offsets {idle} adm:0: {v}"));
    }
    let mut want = idle_offsets.clone();
    want.remove(&(topic.to_string(), 0));
    let got = client_offsets(&node, "ck", idle);
    if got != want {
        errs.push(format!("{idle} offsets after deleting adm:0: {got:?}, want {want:?}"));
    }
    // DeleteGroups on an empty group (ck), and on one that does not exist (kp).
    let v = admin_op(&node, "ck", "delete", &["--group", idle]);
    if !v["results"][idle]["error"].is_null() {
        errs.push(format!("ck delete {idle}: {v}"));
    }
    let v = admin_op(&node, "kp", "delete", &["--group", ghost]);
    if v["results"][ghost]["error"].opt_str() != Some("GROUP_ID_NOT_FOUND") {
        errs.push(format!("kp delete {ghost}: want GROUP_ID_NOT_FOUND, got {v}"));
    }
    let v = admin_op(&node, "kp", "list", &[]);
    if v["groups"].arr().iter().any(|g| g["group"].str() == idle) {
        errs.push(format!("kp list after deleting {idle}: still there: {v}"));
    }
    if !client_offsets(&node, "kp", idle).is_empty() {
        errs.push(format!("{idle}: committed offsets survived its deletion"));
    }
    // Once its members have left, the active group can be deleted too.
    x.stop();
    y.stop();
    let v = admin_op(&node, "kp", "delete", &["--group", active]);
    if !v["results"][active]["error"].is_null() {
        errs.push(format!("kp delete {active} after its members left: {v}"));
    }
    let v = admin_op(&node, "ck", "list", &[]);
    if v["groups"].arr().iter().any(|g| g["group"].str() == active) {
        errs.push(format!("ck list after deleting {active}: still there: {v}"));
    }
    if admin_group(&node, active).is_some_and(|g| g["state"].str() != "Dead") {
        errs.push(format!("/groups still shows {active} after its deletion: {:?}", admin_group(&node, active)));
    }
    assert!(errs.is_empty(), "group admin APIs:\n  {}\n{}", errs.join("\n  "), node.logs(60));
}

// ---------------------------------------------------------------------------------------------
// Show 8: churn.

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Show 8: many groups × 3 members joining and leaving (SLUICE_CHURN_GROUPS, default 100; SLUICE_CHURN_SECS, default 20): no join stuck, every group ends Empty, node memory (RssAnon) bounded, a final join completes — on two shards.
#[test]
fn churn_of_many_groups_leaves_no_stuck_group_and_bounded_memory() {
    let groups = env_num("SLUICE_CHURN_GROUPS", 100);
    let secs = env_num("SLUICE_CHURN_SECS", 20);
    let node = start_node("0-1", 6, &[]);
    let pid = node.pid().unwrap();
    let topic = "churn";
    produce(&node, topic, 0, 60, &[]);
    let rss = |f: &str| proc_status_kb(pid, f).unwrap_or(0);
    let (anon0, rss0) = (rss("RssAnon"), rss("VmRSS"));
    let args: Vec<String> = [
        "--bootstrap",
        node.bootstrap(),
        "--topic",
        topic,
        "--groups",
        &groups.to_string(),
        "--members",
        "3",
        "--duration",
        &secs.to_string(),
        "--session-timeout-ms",
        "6000",
        "--join-timeout",
        "30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut churn = Bg::py("churn", "grp_churn.py", &args);
    // Memory a third of the way in (every group has formed by then) and at the end.
    std::thread::sleep(Duration::from_secs(secs / 3 + 2));
    let anon1 = rss("RssAnon");
    let status = churn.wait(Duration::from_secs(secs + 120));
    let status = status.unwrap_or_else(|| panic!("grp_churn.py did not finish\n{}\n{}", churn.logs(20), node.logs(40)));
    assert!(status.success(), "grp_churn.py failed ({status})\n{}\n{}", churn.logs(30), node.logs(40));
    let lines = churn.lines();
    let result = lines
        .iter()
        .rev()
        .find_map(|l| json::parse(l).ok().filter(|v| v["ev"].is_null()))
        .unwrap_or_else(|| panic!("grp_churn.py printed no result\n{}", churn.logs(20)));
    figure(&format!(
        "churn: {groups} groups × 3 members for {secs} s: {} cycles, {} joins, join ms {}, stuck {}, errors {}",
        result["cycles"], result["joins"], result["join_ms"], result["stuck_joins"], result["errors"]
    ));
    assert_eq!(
        result["stuck_joins"].i64(),
        0,
        "joins that never got an assignment: {}\n{}",
        result["error_samples"],
        node.logs(60)
    );
    assert_eq!(result["errors"].i64(), 0, "churn errors: {}\n{}", result["error_samples"], node.logs(60));
    assert!(result["joins"].i64() >= (groups * 3) as i64, "fewer joins than members: {result}\n{}", node.logs(40));

    // Every churn group settles Empty (or is gone); none is left mid-rebalance.
    let names: BTreeSet<String> = (0..groups).map(|g| format!("churn-{g}")).collect();
    let settle = Instant::now();
    loop {
        let v = admin_groups(&node);
        let bad: Vec<String> = v["groups"]
            .arr()
            .iter()
            .filter(|g| names.contains(g["group"].str()))
            .filter(|g| !matches!(g["state"].str(), "Empty" | "Dead") || !g["members"].arr().is_empty())
            .map(|g| format!("{} {} ({} members)", g["group"].str(), g["state"].str(), g["members"].arr().len()))
            .collect();
        if bad.is_empty() {
            let shards: BTreeSet<i64> = v["groups"]
                .arr()
                .iter()
                .filter(|g| names.contains(g["group"].str()))
                .map(|g| g["coordinator_shard"].i64())
                .collect();
            if groups >= 20 {
                assert_eq!(shards, BTreeSet::from([0, 1]), "churn groups' coordinators: both shards should have some");
            }
            break;
        }
        let last = bad.join(", ");
        assert!(
            settle.elapsed() < Duration::from_secs(20),
            "groups not settled 20 s after the churn ended: {last}\n{}",
            node.logs(60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (anon2, rss2) = (rss("RssAnon"), rss("VmRSS"));
    figure(&format!("churn: node RssAnon {anon0} → {anon1} (1/3 in) → {anon2} KiB (end); VmRSS {rss0} → {rss2} KiB"));
    // Bounded: what the second two thirds of the churn added is small, not proportional to it.
    let grew = anon2.saturating_sub(anon1);
    assert!(
        grew <= 32 * 1024 + anon1 / 4,
        "node anonymous memory grew {grew} KiB during the last two thirds of the churn ({anon1} → {anon2} KiB)\n{}",
        node.logs(30)
    );

    // A final join completes at once, in a churned group, with each client.
    let dir = TempDir::new("grp");
    let mut f1 = Member::start(&node, &dir, "ck", "final-ck", "churn-0", topic, &["--reset", "latest"]);
    let mut f2 = Member::start(&node, &dir, "kp", "final-kp", "churn-1", topic, &["--reset", "latest"]);
    let all = tps(topic, 6);
    wait_for(
        "a final join in churned groups",
        Duration::from_secs(30),
        || diag(&node, &[&f1, &f2]),
        || f1.assignment().as_ref() == Some(&all) && f2.assignment().as_ref() == Some(&all),
    );
    f1.stop();
    f2.stop();
}

// ---------------------------------------------------------------------------------------------
// KIP-848: the consumer group protocol (issue #13 Build 4 / Show 5). confluent-kafka 2.16
// members with group.protocol=consumer; the node assigns (server-side `uniform`).

/// Show 5 (a): 3 consumer-protocol members split 6 partitions 2/2/2, disjoint and complete (the node's /groups agrees), joining mid-stream; 6000 messages consumed exactly once with sync commits (OffsetCommit v9 with member epochs).
#[test]
fn consumer_protocol_three_members_split_six_partitions_and_consume_each_message_once() {
    three_members_exactly_once_with("ck", "0-1", Proto::Consumer);
}

/// Show 5 (b, c): a SIGKILLed consumer-protocol member's partitions move after group.consumer.session.timeout.ms (not before); a clean close() (leave with epoch -1) moves them at once.
#[test]
fn consumer_protocol_killed_member_moves_after_session_timeout_closed_member_at_once() {
    killed_then_closed_with("ck", Proto::Consumer);
}

/// Show 5 (d): AdminClient describe_consumer_groups (ConsumerGroupDescribe) shows a consumer-protocol group as type consumer, Stable, with its members, their assignments and targets; list_consumer_groups (ListGroups v5) gives each group its type, classic and consumer side by side.
#[test]
fn consumer_protocol_group_is_described_and_listed_with_its_type() {
    let settings = consumer_protocol_settings(45_000);
    let extra: Vec<&str> = settings.iter().map(String::as_str).collect();
    let node = start_node("0-1", 6, &extra);
    let dir = TempDir::new("grp");
    let topic = "desc848";
    let all = tps(topic, 6);
    produce(&node, topic, 0, 600, &[]);
    let (consumer_group, classic_group) = ("g848-consumer", "g848-classic");
    let flags = ["--commit", "sync", "--group-protocol", "consumer"];
    let mut a = Member::start(&node, &dir, "ck", "c848-a", consumer_group, topic, &flags);
    let mut b = Member::start(&node, &dir, "ck", "c848-b", consumer_group, topic, &flags);
    let mut k = Member::start(&node, &dir, "ck", "k848", classic_group, topic, &["--commit", "sync"]);
    wait_balanced(&node, &[&a, &b], &all, Duration::from_secs(60), Duration::from_secs(1));
    wait_balanced(&node, &[&k], &all, Duration::from_secs(60), Duration::from_millis(300));

    let v = admin_op(&node, "ck", "describe", &["--group", consumer_group, "--group", classic_group]);
    let d = &v["groups"][consumer_group];
    assert_eq!(d["error"].opt_str(), None, "describe {consumer_group}: {v}");
    assert_eq!(d["type"].str(), "consumer", "describe {consumer_group}: {d}");
    assert_eq!(d["state"].str(), "Stable", "describe {consumer_group}: {d}");
    assert_eq!(d["protocol"].str(), "uniform", "the server-side assignor: {d}");
    assert_eq!(d["members"].arr().len(), 2, "{d}");
    for m in [&a, &b] {
        let dm = d["members"]
            .arr()
            .iter()
            .find(|x| x["client_id"].str() == m.name)
            .unwrap_or_else(|| panic!("no member with client id {}: {d}", m.name))
            .clone();
        assert_eq!(tp_list(&dm["assignment"]), m.assignment().unwrap(), "{}: described assignment: {d}", m.name);
        assert_eq!(tp_list(&dm["target"]), m.assignment().unwrap(), "{}: target = current when stable: {d}", m.name);
    }
    // The classic group still describes as classic (librdkafka falls back to DescribeGroups).
    let c = &v["groups"][classic_group];
    assert_eq!((c["type"].str(), c["state"].str(), c["members"].arr().len()), ("classic", "Stable", 1), "{c}");

    let v = admin_op(&node, "ck", "list", &[]);
    let types: BTreeMap<String, (String, String)> = v["groups"]
        .arr()
        .iter()
        .map(|g| (g["group"].str().to_string(), (g["type"].str().to_string(), g["state"].str().to_string())))
        .collect();
    assert_eq!(types.get(consumer_group), Some(&("consumer".to_string(), "Stable".to_string())), "list: {v}");
    assert_eq!(types.get(classic_group), Some(&("classic".to_string(), "Stable".to_string())), "list: {v}");
    for m in [&mut a, &mut b, &mut k] {
        m.stop();
    }
    let v = admin_op(&node, "ck", "list", &[]);
    let g = v["groups"].arr().iter().find(|g| g["group"].str() == consumer_group).cloned();
    assert_eq!(g.map(|g| g["state"].str().to_string()), Some("Empty".to_string()), "after both left: {v}");
}

/// Show 5: a consumer-protocol member subscribed by regex (librdkafka sends `^rx-.*` as SubscribedTopicRegex) gets the matching topic's partitions, and a matching topic created later is added at a following heartbeat, with its records consumed; a non-matching topic is not.
#[test]
fn consumer_protocol_regex_subscription_follows_new_topics() {
    let settings = consumer_protocol_settings(45_000);
    let extra: Vec<&str> = settings.iter().map(String::as_str).collect();
    let node = start_node("0-1", 2, &extra);
    let dir = TempDir::new("grp");
    produce(&node, "rx-a", 0, 20, &[]);
    produce(&node, "other-rx", 0, 20, &[]);
    let mut m = Member::start(
        &node,
        &dir,
        "ck",
        "rx-0",
        "g-rx",
        "^rx-.*",
        &["--commit", "sync", "--group-protocol", "consumer"],
    );
    wait_balanced(&node, &[&m], &tps("rx-a", 2), Duration::from_secs(60), Duration::from_millis(300));
    produce(&node, "rx-b", 0, 20, &[]);
    let want: BTreeSet<Tp> = tps("rx-a", 2).union(&tps("rx-b", 2)).cloned().collect();
    wait_balanced(&node, &[&m], &want, Duration::from_secs(60), Duration::from_millis(300));
    wait_for("the 40 records of rx-a and rx-b", Duration::from_secs(60), || diag(&node, &[&m]), || m.count() >= 40);
    m.stop();
    let topics: BTreeSet<String> = m.records().into_iter().map(|r| r.tp.0).collect();
    assert_eq!(topics, BTreeSet::from(["rx-a".to_string(), "rx-b".to_string()]), "{}", diag(&node, &[&m]));
    assert_eq!(m.count(), 40, "each record once: {}", diag(&node, &[&m]));
}

mod kip848_wire {
    //! Raw ConsumerGroupHeartbeat / ConsumerGroupDescribe requests, where the test controls
    //! every field: the reconciliation steps one by one, every refusal with Kafka's code,
    //! and that refusals change nothing.

    use super::support::wire::{name, Client};
    use super::support::Node;
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use std::collections::BTreeSet;

    const NONE: i16 = 0;
    const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    const UNKNOWN_MEMBER_ID: i16 = 25;
    const INVALID_REQUEST: i16 = 42;
    const GROUP_ID_NOT_FOUND: i16 = 69;
    const FENCED_MEMBER_EPOCH: i16 = 110;
    const UNRELEASED_INSTANCE_ID: i16 = 111;
    const UNSUPPORTED_ASSIGNOR: i16 = 112;
    const STALE_MEMBER_EPOCH: i16 = 113;
    const INVALID_REGULAR_EXPRESSION: i16 = 128;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    type Owned = Vec<(uuid::Uuid, Vec<i32>)>;

    fn join(group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![name(topic)]))
            .with_topic_partitions(Some(Vec::new()))
    }

    fn beat(group: &str, member: &str, epoch: i32, owned: &Owned) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_topic_partitions(Some(
                owned
                    .iter()
                    .map(|(t, p)| TopicPartitions::default().with_topic_id(*t).with_partitions(p.clone()))
                    .collect(),
            ))
    }

    fn hb(c: &mut Client, r: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        c.send(ApiKey::ConsumerGroupHeartbeat, 1, r);
        c.recv(ApiKey::ConsumerGroupHeartbeat, 1)
    }

    fn owned(r: &ConsumerGroupHeartbeatResponse) -> Owned {
        let a = r.assignment.as_ref().unwrap_or_else(|| panic!("no assignment in {r:?}"));
        a.topic_partitions.iter().map(|t| (t.topic_id, t.partitions.clone())).collect()
    }

    fn count(o: &Owned) -> usize {
        o.iter().map(|(_, p)| p.len()).sum()
    }

    fn parts(o: &Owned) -> BTreeSet<i32> {
        o.iter().flat_map(|(_, p)| p.iter().copied()).collect()
    }

    fn describe(c: &mut Client, group: &str) -> consumer_group_describe_response::DescribedGroup {
        let r = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
        c.send(ApiKey::ConsumerGroupDescribe, 0, &r);
        let mut d: ConsumerGroupDescribeResponse = c.recv(ApiKey::ConsumerGroupDescribe, 0);
        d.groups.remove(0)
    }

    /// Commits offset 5 for `topic`'s `partition`.
    fn commit(c: &mut Client, group: &str, member: &str, epoch: i32, topic: &str, partition: i32) -> i16 {
        let r = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(name(topic)).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(partition).with_committed_offset(5),
            ])]);
        c.send(ApiKey::OffsetCommit, 9, &r);
        let a: OffsetCommitResponse = c.recv(ApiKey::OffsetCommit, 9);
        a.topics[0].partitions[0].error_code
    }

    fn fetch(c: &mut Client, group: &str, member: &str, epoch: i32, topic: &str, partition: i32) -> (i16, i64) {
        let g = OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(Some(s(member)))
            .with_member_epoch(epoch)
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(name(topic))
                .with_partition_indexes(vec![partition])]));
        c.send(ApiKey::OffsetFetch, 9, &OffsetFetchRequest::default().with_groups(vec![g]));
        let a: OffsetFetchResponse = c.recv(ApiKey::OffsetFetch, 9);
        let g = &a.groups[0];
        (g.error_code, g.topics.first().map_or(-1, |t| t.partitions[0].committed_offset))
    }

    /// Show 5 (e): raw ConsumerGroupHeartbeats walk one reconciliation step by step (a partition goes to the newcomer only after its owner's heartbeat gave it up); stale or unknown epochs are FENCED_MEMBER_EPOCH, unknown members UNKNOWN_MEMBER_ID, bad field combinations INVALID_REQUEST, an unknown assignor UNSUPPORTED_ASSIGNOR, a taken instance id UNRELEASED_INSTANCE_ID, a stale commit STALE_MEMBER_EPOCH, classic/consumer mix-ups as Kafka answers them, and none of it changes the group; after a node restart the members carry on with their epochs and assignments.
    #[test]
    fn consumer_group_heartbeat_steps_refusals_and_restart() {
        let mut node = Node::start(&["--cores", "0-1", "--set", "group.initial.rebalance.delay.ms=0"]);
        let mut c = Client::connect(node.bootstrap());
        c.create_topic("raw848", 4);
        let g = "g-raw848";

        // a joins alone: all four at epoch 1.
        let r = hb(&mut c, &join(g, "m-a", "raw848"));
        assert_eq!((r.error_code, r.member_epoch), (NONE, 1), "{r:?}");
        assert_eq!(r.member_id.as_deref(), Some("m-a"));
        assert!(r.heartbeat_interval_ms > 0, "{r:?}");
        let a_all = owned(&r);
        assert_eq!(count(&a_all), 4);

        // Refusals, none of which may change the group.
        let before = format!("{:?}", describe(&mut c, g));
        for (what, req, want) in [
            ("a future epoch", beat(g, "m-a", 7, &a_all), FENCED_MEMBER_EPOCH),
            ("an unknown member", beat(g, "m-ghost", 1, &Vec::new()), UNKNOWN_MEMBER_ID),
            ("a join without TopicPartitions", join(g, "m-x", "raw848").with_topic_partitions(None), INVALID_REQUEST),
            (
                "a join without subscription",
                join(g, "m-x", "raw848").with_subscribed_topic_names(None),
                INVALID_REQUEST,
            ),
            (
                "a join without rebalance timeout",
                join(g, "m-x", "raw848").with_rebalance_timeout_ms(-1),
                INVALID_REQUEST,
            ),
            ("an empty member id (v1)", join(g, "", "raw848"), INVALID_REQUEST),
            ("epoch -3", beat(g, "m-a", -3, &a_all), INVALID_REQUEST),
            ("a static leave without instance id", beat(g, "m-a", -2, &a_all), INVALID_REQUEST),
            (
                "an unknown assignor",
                join(g, "m-x", "raw848").with_server_assignor(Some(s("sticky"))),
                UNSUPPORTED_ASSIGNOR,
            ),
            ("a leave of an unknown member", beat(g, "m-ghost", -1, &Vec::new()), UNKNOWN_MEMBER_ID),
            (
                "a heartbeat to a group that does not exist",
                beat("g-nowhere", "m-a", 1, &Vec::new()),
                GROUP_ID_NOT_FOUND,
            ),
            ("an empty group id", join("", "m-x", "raw848"), INVALID_REQUEST),
            (
                "a regex that does not compile",
                join(g, "m-x", "raw848").with_subscribed_topic_regex(Some(s("raw("))),
                INVALID_REGULAR_EXPRESSION,
            ),
        ] {
            let r = hb(&mut c, &req);
            assert_eq!(r.error_code, want, "{what}: {r:?}");
            assert!(r.error_message.is_some(), "{what}: Kafka explains refusals: {r:?}");
        }
        assert_eq!(format!("{:?}", describe(&mut c, g)), before, "refused heartbeats changed the group");

        // b joins: epoch 2 at once, but nothing yet (a still owns all four).
        let r = hb(&mut c, &join(g, "m-b", "raw848"));
        assert_eq!((r.error_code, r.member_epoch, count(&owned(&r))), (NONE, 2, 0), "{r:?}");
        let r = hb(&mut c, &beat(g, "m-a", 1, &a_all));
        // a is told to keep two; its epoch stays 1 until it has given up the others.
        assert_eq!((r.error_code, r.member_epoch), (NONE, 1), "{r:?}");
        let a_kept = owned(&r);
        assert_eq!(count(&a_kept), 2);
        let r = hb(&mut c, &beat(g, "m-b", 2, &Vec::new()));
        assert_eq!((r.error_code, r.assignment.is_none()), (NONE, true), "b must wait for a's revocation: {r:?}");
        let r = hb(&mut c, &beat(g, "m-a", 1, &a_kept));
        assert_eq!((r.error_code, r.member_epoch), (NONE, 2), "{r:?}");
        let r = hb(&mut c, &beat(g, "m-b", 2, &Vec::new()));
        let b_got = owned(&r);
        assert_eq!((r.error_code, count(&b_got)), (NONE, 2), "{r:?}");
        assert!(parts(&a_kept).is_disjoint(&parts(&b_got)), "{a_kept:?} {b_got:?}");
        // a's previous epoch with what it owns now is tolerated (a lost answer); with more, fenced.
        assert_eq!(hb(&mut c, &beat(g, "m-a", 1, &a_kept)).error_code, NONE);
        assert_eq!(hb(&mut c, &beat(g, "m-a", 1, &a_all)).error_code, FENCED_MEMBER_EPOCH);

        // Static members: an instance id in use cannot be taken.
        let r = hb(&mut c, &join(g, "m-s", "raw848").with_instance_id(Some(s("inst-1"))));
        assert_eq!(r.error_code, NONE, "{r:?}");
        let r = hb(&mut c, &join(g, "m-t", "raw848").with_instance_id(Some(s("inst-1"))));
        assert_eq!(r.error_code, UNRELEASED_INSTANCE_ID, "{r:?}");
        let r = hb(&mut c, &beat(g, "m-s", -1, &Vec::new()).with_instance_id(Some(s("inst-1"))));
        assert_eq!((r.error_code, r.member_epoch), (NONE, -1), "{r:?}");

        // Commits carry the member epoch (OffsetCommit v9). An older epoch counts only for a
        // partition the member still owns and was given at or before it (KIP-1251): a's
        // partitions since epoch 1, b's since epoch 2.
        let epoch_a = hb(&mut c, &beat(g, "m-a", 2, &a_kept)).member_epoch;
        let (pa, pb) = (*parts(&a_kept).first().unwrap(), *parts(&b_got).first().unwrap());
        assert_eq!(commit(&mut c, g, "m-a", epoch_a + 1, "raw848", pa), STALE_MEMBER_EPOCH);
        assert_eq!(commit(&mut c, g, "m-a", 0, "raw848", pa), STALE_MEMBER_EPOCH);
        assert_eq!(commit(&mut c, g, "m-a", 1, "raw848", pb), STALE_MEMBER_EPOCH);
        assert_eq!(commit(&mut c, g, "m-b", 1, "raw848", pb), STALE_MEMBER_EPOCH);
        assert_eq!(commit(&mut c, g, "m-ghost", epoch_a, "raw848", pa), UNKNOWN_MEMBER_ID);
        assert_eq!(commit(&mut c, g, "m-a", 1, "raw848", pa), NONE);
        assert_eq!(commit(&mut c, g, "m-a", epoch_a, "raw848", pa), NONE);
        assert_eq!(fetch(&mut c, g, "m-a", epoch_a, "raw848", pa), (NONE, 5));
        assert_eq!(fetch(&mut c, g, "m-a", epoch_a - 1, "raw848", pa).0, STALE_MEMBER_EPOCH);
        assert_eq!(fetch(&mut c, g, "m-a", epoch_a + 5, "raw848", pa).0, STALE_MEMBER_EPOCH);

        // Classic and consumer groups side by side.
        let join_classic = JoinGroupRequest::default()
            .with_group_id(GroupId(s(g)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(""))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))]);
        c.send(ApiKey::JoinGroup, 3, &join_classic);
        let j: JoinGroupResponse = c.recv(ApiKey::JoinGroup, 3);
        assert_eq!(j.error_code, INCONSISTENT_GROUP_PROTOCOL, "a classic JoinGroup to a consumer group: {j:?}");
        let classic = "g-raw848-classic";
        c.send(ApiKey::JoinGroup, 3, &join_classic.clone().with_group_id(GroupId(s(classic))));
        let j: JoinGroupResponse = c.recv(ApiKey::JoinGroup, 3);
        assert_eq!(j.error_code, NONE, "{j:?}");
        let r = hb(&mut c, &join(classic, "m-c", "raw848"));
        assert_eq!(r.error_code, GROUP_ID_NOT_FOUND, "a consumer heartbeat to a classic group with members: {r:?}");
        assert_eq!(describe(&mut c, classic).error_code, GROUP_ID_NOT_FOUND);
        let d = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(g))]);
        c.send(ApiKey::DescribeGroups, 5, &d);
        let d: DescribeGroupsResponse = c.recv(ApiKey::DescribeGroups, 5);
        assert_eq!((d.groups[0].error_code, d.groups[0].group_state.as_str()), (NONE, "Dead"), "{d:?}");
        c.send(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
        let l: ListGroupsResponse = c.recv(ApiKey::ListGroups, 5);
        let types: Vec<(String, String)> =
            l.groups.iter().map(|x| (x.group_id.0.to_string(), x.group_type.to_string())).collect();
        assert!(types.contains(&(g.to_string(), "consumer".to_string())), "{types:?}");
        assert!(types.contains(&(classic.to_string(), "classic".to_string())), "{types:?}");
        c.send(ApiKey::ListGroups, 5, &ListGroupsRequest::default().with_types_filter(vec![s("consumer")]));
        let l: ListGroupsResponse = c.recv(ApiKey::ListGroups, 5);
        assert_eq!(l.groups.len(), 1, "types filter consumer: {l:?}");

        // The new settings are broker configs like the others.
        let dc = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("0"))
                .with_configuration_keys(None),
        ]);
        c.send(ApiKey::DescribeConfigs, 4, &dc);
        let dc: DescribeConfigsResponse = c.recv(ApiKey::DescribeConfigs, 4);
        let names: BTreeSet<String> = dc.results[0].configs.iter().map(|x| x.name.to_string()).collect();
        for n in [
            "group.consumer.session.timeout.ms",
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.max.size",
            "group.consumer.assignors",
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        ] {
            assert!(names.contains(n), "DescribeConfigs of the broker lacks {n}");
        }

        // A restart: the group comes back; both members carry on with their epochs.
        let d_before = describe(&mut c, g);
        drop(c);
        node.restart();
        let mut c = Client::connect(node.bootstrap());
        let r = hb(&mut c, &beat(g, "m-a", epoch_a, &a_kept));
        assert_eq!((r.error_code, r.member_epoch), (NONE, epoch_a), "after restart: {r:?}");
        let d_after = describe(&mut c, g);
        assert_eq!(
            (d_after.group_epoch, d_after.assignment_epoch, d_after.members.len()),
            (d_before.group_epoch, d_before.assignment_epoch, d_before.members.len()),
            "{d_before:?}\n{d_after:?}"
        );
        for m in &d_before.members {
            let after = d_after.members.iter().find(|x| x.member_id == m.member_id).expect("member back");
            assert_eq!((after.member_epoch, &after.assignment), (m.member_epoch, &m.assignment), "{}", m.member_id);
        }
        assert_eq!(fetch(&mut c, g, "m-a", epoch_a, "raw848", pa), (NONE, 5), "the commit survives too");
        let r = hb(&mut c, &beat(g, "m-b", 2, &b_got));
        assert_eq!(r.error_code, NONE, "b after the restart: {r:?}");
        // Leave: b gets everything at the next epoch, once a's partitions are free.
        let r = hb(&mut c, &beat(g, "m-a", -1, &a_kept));
        assert_eq!((r.error_code, r.member_epoch), (NONE, -1));
        let r = hb(&mut c, &beat(g, "m-b", 2, &b_got));
        assert_eq!((r.error_code, count(&owned(&r))), (NONE, 4), "{r:?}");
    }
}
