//! Starting and stopping the node: one pinned glommio executor per selected core.
//!
//! Start: lock the data directory (`ownership`: a second node on it, or on a listener's
//! address, is refused before anything is written); read the data directory (topics,
//! checkpoints, clean-shutdown marker) on the main thread; start the shards; each joins the
//! channel mesh, opens the partitions it owns and binds its own SO_REUSEPORT listener on the
//! same address (shard 0 first, after probing it, so `:0` picks one port for all); the main thread prints one ready line and waits for SIGINT/SIGTERM.
//! Stop: shards stop accepting; shard 0 has every shard flush and close its logs, writes
//! the checkpoints and the clean-shutdown marker; the process exits 0.

use crate::config::BrokerConfig;
use crate::connection_quotas::ConnectionQuotas;
use crate::group::store::OFFSETS_TOPIC;
use crate::log::{checkpoint, TopicPartition, CLEAN_SHUTDOWN_FILE};
use crate::ownership::{claim_address, DirLock};
use crate::runtime::{executor_builder, raise_memlock_limit};
use crate::shard::{Op, Shard, ShardSetup};
use crate::topics::{Registry, TopicId, TopicInfo};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::Duration;

/// The listeners' names in messages.
const KAFKA_LISTENER: &str = "Kafka listener";
const ADMIN_LISTENER: &str = "admin listener";

/// Capacity of each shard-to-shard channel of the mesh.
const MESH_CHANNEL_CAPACITY: usize = 1024;

/// How often an idle shard looks at the stop flag set by the signal thread.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct ServerArgs {
    pub listen: String,
    /// The admin HTTP listener (`None`: `--admin off`).
    pub admin: Option<String>,
    pub data_dir: PathBuf,
    pub cores: Vec<usize>,
    pub config: BrokerConfig,
}

/// What the shards share at start and stop (startup hand-offs only, never the hot path).
struct Startup {
    peer_of_shard: Mutex<Vec<usize>>,
    joined: Barrier,
    bound: Mutex<Option<SocketAddr>>,
    bound_ready: Barrier,
    stop: AtomicBool,
    /// Shard 0 finished the clean shutdown (successfully or not): other shards may exit.
    done: AtomicBool,
    /// The clean shutdown succeeded.
    closed: AtomicBool,
}

/// Once every partition is open: says so when the descriptor limit leaves room for few
/// connections (`descriptors`; `sluice doctor` explains the same from outside).
fn warn_if_few_descriptors(soft: u64, hard: u64) {
    let Some(headroom) = crate::descriptors::Headroom::now() else { return };
    let (open, reserve, room) = (headroom.open, headroom.reserve, headroom.free());
    if room < crate::descriptors::LOW_ROOM_WARNING {
        eprintln!(
            "sluice: warning: the descriptor limit is low: RLIMIT_NOFILE {soft} (hard {hard}), {open} open after \
             opening the partitions, {reserve} kept in reserve: room for {room} connections. Raise it \
             (`ulimit -n 65536`, systemd LimitNOFILE=); `sluice doctor` checks it."
        );
    }
}

/// Runs the node until SIGINT/SIGTERM. Prints the ready line on stdout.
pub fn run(args: ServerArgs) -> Result<(), String> {
    let dir = std::path::absolute(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    // Held until this function returns, i.e. until every shard has stopped.
    let _lock = DirLock::acquire(&dir)?;
    // Fail fast, before any partition is opened; shard 0 probes again right before it binds.
    claim_address(&args.listen, KAFKA_LISTENER, "--listen")?;
    if let Some((host, _)) = args.listen.rsplit_once(':') {
        crate::peer::set_source_address(host.trim_start_matches('[').trim_end_matches(']'));
    }
    if let Some(admin) = &args.admin {
        claim_address(admin, ADMIN_LISTENER, "--admin")?;
    }
    raise_memlock_limit();
    let (nofile, nofile_hard) = crate::descriptors::raise_nofile_limit();
    let setup = prepare(&args)?;
    block_stop_signals();
    let n = args.cores.len();
    let watchdog_stop = Arc::new(AtomicBool::new(false));
    crate::watchdog::start(n, watchdog_stop.clone())?;
    let startup = Arc::new(Startup {
        peer_of_shard: Mutex::new(vec![usize::MAX; n]),
        joined: Barrier::new(n),
        bound: Mutex::new(None),
        bound_ready: Barrier::new(n),
        stop: AtomicBool::new(false),
        done: AtomicBool::new(false),
        closed: AtomicBool::new(false),
    });
    let mesh: MeshBuilder<Op, _> = MeshBuilder::full(n, MESH_CHANNEL_CAPACITY);
    // The one thing the shards' connection code shares: node-wide connection counts, touched
    // at accept and close only (see `connection_quotas`).
    let quotas = ConnectionQuotas::new();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(SocketAddr, Option<SocketAddr>), String>>();
    let mut handles = Vec::new();
    for (id, &core) in args.cores.iter().enumerate() {
        let (mesh, startup, setup, args, ready, quotas) =
            (mesh.clone(), startup.clone(), setup.clone(), args.clone(), ready_tx.clone(), quotas.clone());
        let handle = executor_builder(&format!("shard-{id}"), Some(core))
            .spawn(move || async move {
                let registration = crate::watchdog::register(id);
                glommio::spawn_local(registration.beat_task()).detach();
                let result = shard_main(id, mesh, startup.clone(), setup, args, ready.clone(), quotas).await;
                if let Err(e) = result {
                    let _ = ready.send(Err(format!("shard {id}: {e}")));
                    startup.stop.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|e| format!("starting shard {id} on core {core}: {e}"))?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut kafka = None;
    let mut admin = None;
    for _ in 0..n {
        match ready_rx.recv() {
            Ok(Ok((k, a))) => {
                kafka = Some(k);
                admin = admin.or(a);
            }
            Ok(Err(e)) => {
                startup.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
            Err(_) => return Err("a shard exited during start-up".into()),
        }
    }
    let marker = args.data_dir.join(CLEAN_SHUTDOWN_FILE);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| format!("removing {}: {e}", marker.display()))?;
    }
    warn_if_few_descriptors(nofile, nofile_hard);
    let kafka = kafka.expect("n >= 1 shards reported");
    let admin = admin.map_or_else(|| "-".to_string(), |a| a.to_string());
    println!("sluice: ready kafka={kafka} admin={admin} shards={n}");
    let startup_for_signals = startup.clone();
    std::thread::spawn(move || {
        wait_for_stop_signal();
        startup_for_signals.stop.store(true, Ordering::SeqCst);
    });
    for h in handles {
        let _ = h.join();
    }
    watchdog_stop.store(true, Ordering::Relaxed);
    if startup.closed.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err("shutdown did not complete cleanly".into())
    }
}

async fn shard_main(
    id: usize,
    mesh: MeshBuilder<Op, glommio::channels::channel_mesh::Full>,
    startup: Arc<Startup>,
    setup: ShardSetup,
    args: ServerArgs,
    ready: mpsc::Sender<Result<(SocketAddr, Option<SocketAddr>), String>>,
    quotas: Arc<ConnectionQuotas>,
) -> Result<(), String> {
    let (senders, mut receivers) = mesh.join().await.map_err(|_| "joining the shard mesh failed".to_string())?;
    startup.peer_of_shard.lock().expect("startup lock")[id] = senders.peer_id();
    startup.joined.wait();
    let peer_of_shard = startup.peer_of_shard.lock().expect("startup lock").clone();
    let shard = Shard::new(id, setup.clone(), senders, peer_of_shard);
    shard.load.borrow_mut().shard.core = args.cores[id];
    let sampler_queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(LOAD_SAMPLER_SHARES),
        glommio::Latency::NotImportant,
        "load-sampler",
    );
    glommio::spawn_local_into(sample_load(shard.clone()), sampler_queue)
        .map_err(|e| format!("starting the load sampler: {e}"))?
        .detach();
    if id == 0 && setup.config.core_balancing_continuous {
        glommio::spawn_local_into(crate::shard::balance_continuously(shard.clone()), sampler_queue)
            .map_err(|e| format!("starting core balancing: {e}"))?
            .detach();
    }
    for (_, rx) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(op) = rx.recv().await {
                let shard = shard.clone();
                glommio::spawn_local(async move { shard.serve(op).await }).detach();
            }
        })
        .detach();
    }
    let topics: Vec<_> = setup.registry.topics().cloned().collect();
    for info in topics {
        shard.apply_topic(info, false).await?;
    }
    shard.start_coordinators().await?;
    let listener = bind_listener(id, &args.listen, &startup)?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    *shard.advertised.borrow_mut() = match &setup.config.advertised_listener {
        Some(advertised) => advertised.clone(),
        None => (local.ip().to_string(), local.port() as i32),
    };
    if let (Some(voters), Some(view), 0) = (&setup.config.quorum_voters, &setup.cluster, id) {
        let c = &setup.config;
        let settings = crate::quorum::Settings {
            heartbeat: Duration::from_millis(c.broker_heartbeat_interval_ms),
            session: Duration::from_millis(c.broker_session_timeout_ms),
            rebalance: c.auto_leader_rebalance_enable.then(|| {
                let every = Duration::from_secs(c.leader_imbalance_check_interval_seconds.max(1));
                (every, c.leader_imbalance_per_broker_percentage)
            }),
            snapshot_interval: c.metadata_log_snapshot_interval_records,
        };
        let quorum = crate::quorum::Quorum::start(c.node_id, voters, &setup.data_dir, view.clone(), settings).await?;
        *shard.quorum.borrow_mut() = Some(quorum.clone());
        let (host, port) = shard.advertised.borrow().clone();
        let cluster_id = setup.cluster_id.clone();
        if let Some(records) = quorum.take_applied() {
            glommio::spawn_local(follow_topic_records(shard.clone(), records)).detach();
        }
        glommio::spawn_local(register_broker(shard.clone(), quorum, c.node_id, host, port, cluster_id)).detach();
    }
    let admin_addr = match (&args.admin, id) {
        (Some(addr), 0) => {
            // One socket, without SO_REUSEPORT: nobody else can bind it while it is ours.
            let claimed = claim_address(addr, ADMIN_LISTENER, "--admin")?;
            let admin = crate::ownership::listen(claimed, false).map_err(|e| {
                format!("binding admin {addr}: {e} (another node? choose one with --admin HOST:PORT, or --admin off)")
            })?;
            let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
            glommio::spawn_local(crate::admin::serve(shard.clone(), admin)).detach();
            Some(admin_addr)
        }
        _ => None,
    };
    let queue = crate::log::background::background_queue();
    let interval = Duration::from_millis(setup.config.retention_check_interval_ms.max(10));
    crate::log::background::spawn_maintenance(&shard.maintained, queue, interval);
    if setup.config.log_cleaner_enable {
        let backoff = Duration::from_millis(setup.config.log_cleaner_backoff_ms.max(10));
        let budget = (setup.config.log_cleaner_dedupe_buffer_size / args.cores.len().max(1) as u64) as usize;
        crate::log::background::spawn_cleaner(&shard.maintained, queue, backoff, budget);
    }
    if setup.cluster.is_some() {
        glommio::spawn_local(shard.clone().watch_in_sync_replicas()).detach();
    }
    let stop_local = Rc::new(Cell::new(false));
    let accept = glommio::spawn_local(crate::net::serve(shard.clone(), listener, stop_local.clone(), quotas));
    let _ = ready.send(Ok((local, admin_addr)));
    while !startup.stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(STOP_CHECK_INTERVAL).await;
    }
    stop_local.set(true);
    shard.stopping.set(true);
    drop(accept); // stop accepting; connections already open finish what they have
    if id == 0 {
        let result = shard.shutdown_all().await;
        startup.closed.store(result.is_ok(), Ordering::SeqCst);
        if let Err(e) = &result {
            eprintln!("sluice: clean shutdown failed: {e}");
        }
        startup.done.store(true, Ordering::SeqCst);
        result
    } else {
        // Stay up until shard 0 has closed every shard's logs through us.
        while !startup.done.load(Ordering::SeqCst) {
            glommio::timer::sleep(STOP_CHECK_INTERVAL).await;
        }
        Ok(())
    }
}

/// Registers this node's Kafka listener in the quorum (KRaft's broker registration), retrying
/// until a leader commits it: until then the cluster does not list this broker. Proposes this
/// node's cluster id first: the first one committed becomes the cluster's. Once this node
/// has applied its registration (it has caught up), deletes its copies of partitions
/// reassigned away while it was down (`Shard::delete_strays`).
async fn register_broker(
    shard: Rc<Shard>,
    quorum: Rc<crate::quorum::Quorum>,
    id: i32,
    host: String,
    port: i32,
    cluster_id: String,
) {
    use crate::quorum::Record;
    let incarnation = quorum.incarnation();
    let records = [Record::SetClusterId { id: cluster_id }, Record::RegisterBroker { id, host, port, incarnation }];
    for record in records {
        while let Err(e) = quorum.propose(record.clone(), Duration::from_secs(10)).await {
            eprintln!("sluice: broker registration not committed yet: {e}");
        }
    }
    while quorum.until_caught_up(Duration::from_secs(60)).await.is_err() {}
    if let Err(e) = shard.delete_strays().await {
        eprintln!("sluice: deleting copies of partitions reassigned away: {e}");
    }
}

/// Shard 0 of a node in a cluster: opens and deletes topics as their records apply from the
/// metadata log (all of them again at each start; applying is idempotent).
async fn follow_topic_records(
    shard: Rc<Shard>,
    records: glommio::channels::local_channel::LocalReceiver<crate::quorum::TopicChange>,
) {
    use crate::quorum::TopicChange;
    while let Some(change) = records.recv().await {
        let result = match change {
            TopicChange::Upsert { name, topic } => {
                let (id, partitions) = (TopicId(topic.id), topic.nodes.len() as i32);
                let info = TopicInfo {
                    name,
                    id,
                    partitions,
                    configs: topic.configs,
                    nodes: topic.nodes,
                    replicas: topic.replicas,
                    leader_epochs: topic.leader_epochs,
                    isr: topic.isr,
                };
                shard.apply_cluster_topic(info).await
            }
            TopicChange::Delete { name, id } => shard.apply_cluster_delete(&name, TopicId(id)).await,
            TopicChange::ClusterConfigs(configs) => shard.apply_cluster_configs(Some(configs), None).await,
            TopicChange::BrokerConfigs(broker, configs) if broker == shard.config().node_id => {
                shard.apply_cluster_configs(None, Some(configs)).await
            }
            TopicChange::BrokerConfigs(..) => Ok(()), // another broker's
        };
        if let Err(e) = result {
            eprintln!("sluice: applying the metadata log: {e}");
        }
    }
}

/// Shares of the load sampler's task queue against the default queue's 1000: it runs once a
/// second for microseconds, and may run late under load (its rates use the real interval).
const LOAD_SAMPLER_SHARES: usize = 10;

/// Each shard's load sampler, on the shard's own thread: its CPU clock and counters, once
/// per `LOAD_SAMPLE_INTERVAL` (see `metrics::Load::tick`).
async fn sample_load(shard: Rc<Shard>) {
    loop {
        let counters = shard.metrics.borrow().clone();
        let cpu = crate::metrics::thread_cpu_time();
        shard.load.borrow_mut().tick(std::time::Instant::now(), cpu, &counters);
        glommio::timer::sleep(crate::metrics::LOAD_SAMPLE_INTERVAL).await;
    }
}

/// Shard 0 probes the configured address (refused when another process holds it, see
/// `ownership::claim_address`) and binds it; the others bind the port it got (so `:0` works).
fn bind_listener(id: usize, listen: &str, startup: &Startup) -> Result<TcpListener, String> {
    let listener = if id == 0 {
        let addr = claim_address(listen, KAFKA_LISTENER, "--listen")?;
        let l = crate::ownership::listen(addr, true).map_err(|e| format!("binding {listen}: {e}"))?;
        *startup.bound.lock().expect("startup lock") = Some(l.local_addr().map_err(|e| e.to_string())?);
        startup.bound_ready.wait();
        l
    } else {
        startup.bound_ready.wait();
        let addr = startup.bound.lock().expect("startup lock").ok_or("shard 0 did not bind")?;
        crate::ownership::listen(addr, true).map_err(|e| format!("binding {addr}: {e}"))?
    };
    Ok(listener)
}

/// The end of the last producer id block reserved (0 on a new node).
fn read_producer_id_block(dir: &Path) -> Result<i64, String> {
    let path = dir.join(crate::shard::PRODUCER_ID_BLOCK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| format!("{}: not a producer id: {text:?}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Reads the data directory: cluster id, topics, checkpoints, clean-shutdown marker.
fn prepare(args: &ServerArgs) -> Result<ShardSetup, String> {
    let dir = std::path::absolute(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cluster_id = cluster_id(&dir, args.config.node_id)?;
    let mut registry = Registry::scan(&dir)?;
    if args.config.quorum_voters.is_some() {
        // In a cluster a topic's partitions are spread over the nodes and each has one
        // leader: until the metadata log replays, this node opens the partitions whose
        // directories it has as a replica with no leader known (so it serves no client and
        // stamps no batch), and the log then says who leads (`apply_cluster_topic`).
        let scanned: Vec<TopicInfo> = registry.topics().cloned().collect();
        // The coordinators' internal topics too: they are replicated like any other and
        // the metadata log creates them (on the first FindCoordinator, as Kafka does).
        for mut info in scanned {
            info.nodes = vec![-1; info.partitions as usize];
            info.replicas = (0..info.partitions)
                .map(|p| {
                    let here = dir.join(TopicPartition::new(info.name.clone(), p).dir_name()).is_dir();
                    if here {
                        vec![args.config.node_id]
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            registry.upsert(info);
        }
    }
    let mut config = args.config.clone();
    // The internal topics exist from the first start (in a cluster, from their creation
    // through the metadata log); their partition counts are fixed then.
    for (name, wanted) in [
        (OFFSETS_TOPIC, config.offsets_topic_num_partitions),
        (crate::txn::TXN_TOPIC, config.transaction_state_num_partitions),
    ] {
        let actual = match registry.get(name) {
            Some(existing) => {
                if existing.partitions != wanted {
                    eprintln!(
                        "sluice: {name} has {} partitions; its partition setting ({wanted}) applies only at creation",
                        existing.partitions
                    );
                }
                existing.partitions
            }
            None if args.config.quorum_voters.is_some() => wanted,
            None => {
                registry.upsert(TopicInfo {
                    name: name.to_string(),
                    id: TopicId::random(),
                    partitions: wanted,
                    configs: BTreeMap::new(),
                    ..Default::default()
                });
                wanted
            }
        };
        if name == OFFSETS_TOPIC {
            config.offsets_topic_num_partitions = actual;
        } else {
            config.transaction_state_num_partitions = actual;
        }
    }
    let read = |name| -> Result<BTreeMap<TopicPartition, i64>, String> {
        Ok(checkpoint::read_offsets(&dir, name)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| (TopicPartition::new(e.topic, e.partition), e.offset))
            .collect())
    };
    let dynamic_dir = dir.join(crate::config::DYNAMIC_DIR);
    let dynamic_default = crate::config::read_properties(&dynamic_dir, crate::config::DYNAMIC_DEFAULT_FILE)?;
    let dynamic_broker = crate::config::read_properties(&dynamic_dir, crate::config::DYNAMIC_BROKER_FILE)?;
    config
        .with_dynamic(&dynamic_default, &dynamic_broker)
        .map_err(|e| format!("{}: the dynamic broker configs do not apply: {e}", dynamic_dir.display()))?;
    Ok(ShardSetup {
        shards: args.cores.len(),
        config,
        dynamic_default,
        dynamic_broker,
        recovery_points: read(checkpoint::RECOVERY_POINT_FILE)?,
        log_starts: read(checkpoint::LOG_START_OFFSET_FILE)?,
        clean_shutdown: dir.join(CLEAN_SHUTDOWN_FILE).exists(),
        producer_id_start: read_producer_id_block(&dir)?,
        placement: crate::placement::Placement::load(&dir, args.cores.len())?,
        cluster: args.config.quorum_voters.as_ref().map(|_| Default::default()),
        data_dir: dir,
        registry,
        cluster_id,
    })
}

/// The cluster id from `meta.properties` (Kafka's file), created on first start.
fn cluster_id(dir: &Path, node_id: i32) -> Result<String, String> {
    let path = dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id=")) {
            return Ok(id.trim().to_string());
        }
    }
    let id = TopicId::random().to_base64();
    let text = format!("#Written by sluice\nversion=1\ncluster.id={id}\nnode.id={node_id}\n");
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(id)
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts afterwards, so only
/// the signal thread (in `sigwait`) receives them.
fn block_stop_signals() {
    // SAFETY: plain libc signal-set manipulation on local values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn wait_for_stop_signal() {
    // SAFETY: as above; sigwait only writes `sig`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
}

/// Parses a core list: `0-3`, `0,2`, `0-1,4`.
pub fn parse_cores(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--cores {text:?}: {part:?} is not a core number or range");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        return Err(format!("--cores {text:?} selects no core"));
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse_like_taskset() {
        assert_eq!(parse_cores("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cores("0,2").unwrap(), vec![0, 2]);
        assert_eq!(parse_cores("0-1,4,1").unwrap(), vec![0, 1, 4]);
        assert!(parse_cores("").is_err());
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("a").is_err());
    }
}
