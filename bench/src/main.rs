//! `sluice-bench`: the load harness for Sluice and any Kafka-compatible broker.
//!
//! The Kafka client and workloads arrive with the bench issue; storage measurements live in
//! `node/benches/` (run with `cargo bench -p sluice-node`).

fn main() {
    eprintln!(
        "sluice-bench: the Kafka load harness is not built yet.\n\
         Storage measurements: cargo bench -p sluice-node --bench append"
    );
    std::process::exit(2);
}
