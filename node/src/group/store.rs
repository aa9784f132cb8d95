//! The records of `__consumer_offsets`, in Kafka's own formats, so a tool that reads Kafka's
//! offsets topic reads ours:
//!
//! - offset commit: key version 1 `(group, topic, partition)`, value version 3
//!   `(offset, leader_epoch, metadata, commit_timestamp)`, or version 1 (with an expire
//!   timestamp) when the commit asked for a retention of its own;
//! - group metadata: key version 2 `(group)`, value version 3 (protocol type, generation,
//!   protocol, leader, state timestamp, members with their subscription and assignment);
//! - a consumer-protocol (KIP-848) group: key version [`CONSUMER_GROUP_KEY_VERSION`]
//!   `(group)`, value the whole group as `group::consumer` encodes it. This one is the
//!   node's own: Kafka stores such a group as several record kinds (key versions 3–8); see
//!   `group::consumer` for why one snapshot. Its key version is far above any Kafka uses, so
//!   neither reader mistakes the other's records;
//! - a null value is a tombstone: the offset or the group is gone.
//!
//! Readers accept key versions 0–2 and value versions 0–3. Parsing is bounds-checked: a
//! record that does not parse is skipped on load (and reported), never trusted.

use bytes::{BufMut, Bytes, BytesMut};

/// `offsets.topic.num.partitions`' name, and the topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The key version of a stored consumer-protocol group (the node's own record kind).
pub const CONSUMER_GROUP_KEY_VERSION: i16 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
    ConsumerGroup { group: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Set only by commits that asked for their own retention (OffsetCommit v2–v4).
    pub expire_timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// Kafka's partition for a group: `abs(groupId.hashCode) % partitions`, with Java's
/// `String.hashCode` over UTF-16 code units and Kafka's `Utils.abs` (`& 0x7fffffff`).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn put_nullable(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

pub fn encode_key(key: &Key) -> Bytes {
    let mut out = BytesMut::new();
    match key {
        Key::Offset { group, topic, partition } => {
            out.put_i16(1);
            put_str(&mut out, group);
            put_str(&mut out, topic);
            out.put_i32(*partition);
        }
        Key::Group { group } => {
            out.put_i16(2);
            put_str(&mut out, group);
        }
        Key::ConsumerGroup { group } => {
            out.put_i16(CONSUMER_GROUP_KEY_VERSION);
            put_str(&mut out, group);
        }
    }
    out.freeze()
}

pub fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut out = BytesMut::new();
    match v.expire_timestamp {
        Some(expire) => {
            out.put_i16(1);
            out.put_i64(v.offset);
            put_str(&mut out, &v.metadata);
            out.put_i64(v.commit_timestamp);
            out.put_i64(expire);
        }
        None => {
            out.put_i16(3);
            out.put_i64(v.offset);
            out.put_i32(v.leader_epoch);
            put_str(&mut out, &v.metadata);
            out.put_i64(v.commit_timestamp);
        }
    }
    out.freeze()
}

pub fn encode_group(v: &GroupValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(3);
    put_str(&mut out, &v.protocol_type);
    out.put_i32(v.generation);
    put_nullable(&mut out, v.protocol.as_deref());
    put_nullable(&mut out, v.leader.as_deref());
    out.put_i64(v.state_timestamp);
    out.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut out, &m.member_id);
        put_nullable(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out.freeze()
}

/// A bounds-checked reader over big-endian Kafka primitives.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next `n` bytes as they are.
    pub fn take_bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        self.take(n)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }

    pub fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn nullable_str(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let bytes = self.take(len as usize)?;
        Some(Some(String::from_utf8(bytes.to_vec()).ok()?))
    }

    pub fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }

    pub fn bytes(&mut self) -> Option<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::copy_from_slice(self.take(len as usize)?))
    }

    /// An array count, refused if it claims more elements than bytes remain (each element
    /// takes at least `min_element` bytes), so a hostile count cannot make us allocate.
    pub fn count(&mut self, min_element: usize) -> Option<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Some(0);
        }
        let n = n as usize;
        (n.saturating_mul(min_element.max(1)) <= self.buf.len()).then_some(n)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

pub fn decode_key(buf: &[u8]) -> Option<Key> {
    let mut r = Reader::new(buf);
    match r.i16()? {
        0 | 1 => Some(Key::Offset { group: r.str()?, topic: r.str()?, partition: r.i32()? }),
        2 => Some(Key::Group { group: r.str()? }),
        CONSUMER_GROUP_KEY_VERSION => Some(Key::ConsumerGroup { group: r.str()? }),
        _ => None,
    }
}

pub fn decode_offset(buf: &[u8]) -> Option<OffsetValue> {
    let mut r = Reader::new(buf);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = match version {
        1 => Some(r.i64()?),
        0 | 2 | 3 => None,
        _ => return None,
    };
    Some(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
}

pub fn decode_group(buf: &[u8]) -> Option<GroupValue> {
    let mut r = Reader::new(buf);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let n = r.count(2 + 2 + 2 + 4 + 4 + 4)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let member_id = r.str()?;
        let instance_id = if version >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 { session_timeout_ms } else { rebalance_timeout_ms };
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupValue { protocol_type, generation, protocol, leader, state_timestamp, members })
}

/// The topics and partitions in a consumer-protocol assignment (any version 0–3: the
/// layout they share is `version, [topic, [partition]], user_data`).
pub fn consumer_assignment(buf: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader::new(buf);
    let _version = r.i16()?;
    let n = r.count(2 + 4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.str()?;
        let parts = r.count(4)?;
        let mut partitions = Vec::with_capacity(parts);
        for _ in 0..parts {
            partitions.push(r.i32()?);
        }
        out.push((topic, partitions));
    }
    Some(out)
}

/// The topics a consumer-protocol subscription names (`version, [topic], ...`).
pub fn consumer_subscription_topics(buf: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(buf);
    let _version = r.i16()?;
    let n = r.count(2)?;
    (0..n).map(|_| r.str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partition_matches_kafka() {
        // Java: Math.abs("my-group".hashCode()) % 50 etc., computed with Kafka's Utils.abs.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!("a".encode_utf16().next(), Some(97));
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "console-consumer-1": hashCode 1338474052 → 2 (value worked by hand from Java's rule).
        let mut h: i32 = 0;
        for c in "console-consumer-1".chars() {
            h = h.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(partition_for("console-consumer-1", 50), (h & 0x7fff_ffff) % 50);
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_refused() {
        let key = Key::Offset { group: "g".into(), topic: "t".into(), partition: 7 };
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        let key = Key::Group { group: "g2".into() };
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        let key = Key::ConsumerGroup { group: "g3".into() };
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        for expire in [None, Some(99)] {
            let v = OffsetValue {
                offset: 42,
                leader_epoch: if expire.is_some() { -1 } else { 3 },
                metadata: "m".into(),
                commit_timestamp: 5,
                expire_timestamp: expire,
            };
            assert_eq!(decode_offset(&encode_offset(&v)), Some(v));
        }
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 77,
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let bytes = encode_group(&g);
        assert_eq!(decode_group(&bytes), Some(g));
        for cut in 0..bytes.len() {
            assert_eq!(decode_group(&bytes[..cut]), None, "cut at {cut}");
        }
        // A member count far beyond the bytes present is refused, not allocated.
        let mut hostile = BytesMut::new();
        hostile.put_i16(3);
        put_str(&mut hostile, "consumer");
        hostile.put_i32(1);
        hostile.put_i16(-1);
        hostile.put_i16(-1);
        hostile.put_i64(0);
        hostile.put_i32(i32::MAX);
        assert_eq!(decode_group(&hostile), None);
    }

    #[test]
    fn consumer_assignment_parses_topics_and_partitions() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i32(1);
        put_str(&mut b, "t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(3);
        b.put_i32(-1);
        assert_eq!(consumer_assignment(&b), Some(vec![("t".to_string(), vec![0, 3])]));
        assert_eq!(consumer_assignment(&b[..9]), None);
    }
}
