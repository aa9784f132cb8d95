//! Faults for tests, asked for through environment variables read once (afterwards each
//! check is one branch on a cached `None`).
//!
//! `SLUICE_FAULT_PANIC_TOPIC=T`: the first produce request naming topic `T` panics the shard
//! handling it — the test of the node's panic policy (`main.rs`: any panic aborts the
//! process; restart recovers from the log).

use std::sync::OnceLock;

static PANIC_TOPIC: OnceLock<Option<String>> = OnceLock::new();

/// Panics when `topic` is the one `SLUICE_FAULT_PANIC_TOPIC` names.
pub fn panic_on_produce(topic: &str) {
    let wanted = PANIC_TOPIC.get_or_init(|| std::env::var("SLUICE_FAULT_PANIC_TOPIC").ok().filter(|t| !t.is_empty()));
    if wanted.as_deref() == Some(topic) {
        panic!("SLUICE_FAULT_PANIC_TOPIC: a produce to {topic:?}");
    }
}
