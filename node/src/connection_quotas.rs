//! Connection counts of the whole node, against `max.connections` and
//! `max.connections.per.ip` (issue #14, Build 4). Kafka's `ConnectionQuotas`, one per node.
//!
//! Shards share nothing else, so why one shared count here: the limits are node-wide in
//! Kafka and a user sets them for the node, while `SO_REUSEPORT` spreads one address's
//! connections over the shards by a hash of the 4-tuple. A per-shard budget (limit / shards)
//! refuses connections while the node is under its limit whenever the hash is uneven, and
//! cannot express small limits at all (`max.connections.per.ip=1` on 2 shards gives each shard
//! 0 or lets 2 in). So the counts live in one `Mutex` taken twice in a connection's life —
//! once to admit it, once when it closes — never per request; the critical section is one
//! hash-map update. Kafka does the same (one `counts` map synchronised across its acceptor and
//! processor threads).
//!
//! The decision is pure ([`Counts::admit`]): the caller passes the limits in force (they are
//! dynamic broker configs, read from the accepting shard's settings at each accept). The
//! node-wide limit is also capped by what `RLIMIT_NOFILE` leaves for connections
//! (`descriptors::ConnectionRoom`): a node out of descriptors behaves as one at
//! `max.connections`.

use crate::descriptors::ConnectionRoom;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The node's connection counts; one per node, shared by its shards.
#[derive(Debug, Default)]
pub struct ConnectionQuotas {
    counts: Mutex<Counts>,
    room: ConnectionRoom,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the slot is given back when this value is dropped.
    Admitted(ConnectionSlot),
    /// The node holds `max.connections` already — or as many as its descriptor limit leaves
    /// room for (`by_descriptors`, with that limit): keep the connection waiting (unread)
    /// and ask again when one closes — Kafka's acceptor blocks the same way.
    NodeFull { by_descriptors: Option<usize> },
    /// Its address holds its limit already (the limit is given): close it now, as Kafka does.
    TooManyFromAddress(usize),
}

impl ConnectionQuotas {
    pub fn new() -> Arc<ConnectionQuotas> {
        Arc::new(ConnectionQuotas::default())
    }

    /// Counts a connection from `ip` in if the limits allow. Kafka's order: the node-wide
    /// limit first (a full node makes even an over-limit address wait), then the address's.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max_total: usize, max_for_ip: usize) -> Admission {
        let ip = ip.to_canonical();
        let mut counts = self.lock();
        let room = self.room.max_connections(counts.total);
        match counts.admit(ip, max_total.min(room), max_for_ip) {
            Decision::Admit => Admission::Admitted(ConnectionSlot { quotas: self.clone(), ip }),
            Decision::NodeFull => Admission::NodeFull { by_descriptors: (room < max_total).then(|| self.room.limit()) },
            Decision::AddressFull => Admission::TooManyFromAddress(max_for_ip),
        }
    }

    /// Connections held now (node-wide).
    pub fn total(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while counting (impossible: no code in the critical section can panic)
        // leaves the counts as they were; keep using them.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One admitted connection's place in the counts, returned when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.quotas.lock().release(self.ip);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Admit,
    NodeFull,
    AddressFull,
}

/// The counts themselves: pure, no locking, no clock.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Connections per address; an address with none has no entry (the map stays as small
    /// as the set of connected addresses).
    per_ip: HashMap<IpAddr, usize>,
}

impl Counts {
    fn admit(&mut self, ip: IpAddr, max_total: usize, max_for_ip: usize) -> Decision {
        if self.total >= max_total {
            return Decision::NodeFull;
        }
        let held = self.per_ip.get(&ip).copied().unwrap_or(0);
        if held >= max_for_ip {
            return Decision::AddressFull;
        }
        self.total += 1;
        self.per_ip.insert(ip, held + 1);
        Decision::Admit
    }

    fn release(&mut self, ip: IpAddr) {
        debug_assert!(self.total > 0, "a connection slot released twice");
        self.total = self.total.saturating_sub(1);
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.per_ip.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_node_limit_comes_before_the_address_limit_and_slots_come_back() {
        let mut c = Counts::default();
        let (a, b) = (ip("127.0.0.2"), ip("127.0.0.1"));
        // (address, max total, max for the address) -> decision, in order.
        let table = [
            (a, 3, 2, Decision::Admit),
            (a, 3, 2, Decision::Admit),
            (a, 3, 2, Decision::AddressFull),
            (b, 3, 2, Decision::Admit),
            (b, 3, 2, Decision::NodeFull),
            // Full node: even an address over its own limit waits rather than being closed.
            (a, 3, 2, Decision::NodeFull),
            (b, 4, 2, Decision::Admit),
            (b, 5, 2, Decision::AddressFull),
            (a, 5, 0, Decision::AddressFull),
        ];
        for (n, (who, max, per_ip, want)) in table.into_iter().enumerate() {
            assert_eq!(c.admit(who, max, per_ip), want, "step {n}");
        }
        assert_eq!((c.total, c.per_ip[&a], c.per_ip[&b]), (4, 2, 2));
        c.release(a);
        assert_eq!(c.admit(a, 5, 2), Decision::Admit, "a released slot is free again");
        for who in [a, a, b, b] {
            c.release(who);
        }
        assert_eq!(c.total, 0);
        assert!(c.per_ip.is_empty(), "no entry is kept for an address without connections");
    }

    #[test]
    fn slots_are_returned_on_drop_and_mapped_addresses_count_as_ipv4() {
        let q = ConnectionQuotas::new();
        let v4 = ip("127.0.0.2");
        let mapped = ip("::ffff:127.0.0.2");
        let first = match q.admit(v4, 10, 1) {
            Admission::Admitted(slot) => slot,
            other => panic!("{other:?}"),
        };
        assert!(matches!(q.admit(mapped, 10, 1), Admission::TooManyFromAddress(1)), "same address, other spelling");
        assert_eq!(q.total(), 1);
        drop(first);
        assert_eq!(q.total(), 0);
        assert!(matches!(q.admit(mapped, 10, 1), Admission::Admitted(_)));
        assert_eq!(q.total(), 0, "the slot of a dropped admission went back at once");
    }
}
