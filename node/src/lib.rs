//! Sluice: a Kafka-wire-compatible streaming storage node, thread-per-core on glommio.
//!
//! Modules along the write path: `log::batch` (validate a record batch without decoding
//! it) → `log::partition` (assign offsets, coalesce, write through io_uring, group-commit
//! fdatasync) → `log::segment` / `log::index` (Kafka's files). `watch` is the shard-local
//! offset watermark that writers advance and waiters park on.

pub mod admin;
pub mod api;
pub mod balance;
pub mod cli;
pub mod config;
pub mod connection_quotas;
pub mod crc;
pub mod descriptors;
pub mod doctor;
pub mod errors;
pub mod fault;
pub mod file_send;
pub mod frame_pool;
pub mod group;
pub mod internal;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod net;
pub mod ownership;
pub mod partition;
pub mod peer;
pub mod placement;
pub mod protocol;
pub mod protocol_guard;
pub mod quorum;
pub mod replica;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod testing;
pub mod topic_config;
pub mod topics;
pub mod txn;
pub mod watch;
pub mod watchdog;
