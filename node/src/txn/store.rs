//! The records of `__transaction_state`, in Kafka's format: key version 0
//! `(transactional_id)`; value version 0 `(producer_id i64, producer_epoch i16,
//! transaction_timeout_ms i32, transaction_status i8, transaction_partitions
//! [topic, [partition]] (nullable), last_update_timestamp_ms i64, start_timestamp_ms i64)`.

use crate::group::store::Reader;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeSet;

pub const TXN_TOPIC: &str = "__transaction_state";

/// Kafka's transaction states, with their status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_byte(b: i8) -> Option<TxnState> {
        Some(match b {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The names DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub update_ms: i64,
}

impl TxnMeta {
    pub fn new(id: &str, producer_id: i64, epoch: i16, timeout_ms: i32, now_ms: i64) -> TxnMeta {
        TxnMeta {
            id: id.to_string(),
            producer_id,
            epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
        }
    }
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

pub fn encode_key(id: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    put_str(&mut out, id);
    out.freeze()
}

pub fn decode_key(buf: &[u8]) -> Option<String> {
    let mut r = Reader::new(buf);
    (r.i16()? == 0).then_some(())?;
    r.str()
}

pub fn encode_value(m: &TxnMeta) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i64(m.producer_id);
    out.put_i16(m.epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(m.state as i8);
    let mut topics: Vec<(&String, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t => ps.push(*p),
            _ => topics.push((t, vec![*p])),
        }
    }
    out.put_i32(topics.len() as i32);
    for (t, ps) in topics {
        put_str(&mut out, t);
        out.put_i32(ps.len() as i32);
        for p in ps {
            out.put_i32(p);
        }
    }
    out.put_i64(m.update_ms);
    out.put_i64(m.start_ms);
    out.freeze()
}

pub fn decode_value(id: &str, buf: &[u8]) -> Option<TxnMeta> {
    let mut r = Reader::new(buf);
    if r.i16()? != 0 {
        return None;
    }
    let producer_id = r.i64()?;
    let epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = TxnState::from_byte(r.i8()?)?;
    let partitions = super::read_partitions(&mut r)?;
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Some(TxnMeta { id: id.to_string(), producer_id, epoch, timeout_ms, state: status, partitions, start_ms, update_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip() {
        let mut m = TxnMeta::new("tx-1", 7, 3, 60000, 123);
        m.state = TxnState::Ongoing;
        m.start_ms = 100;
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("a".into(), 2));
        m.partitions.insert(("b".into(), 1));
        let bytes = encode_value(&m);
        assert_eq!(decode_value("tx-1", &bytes), Some(m));
        assert_eq!(decode_key(&encode_key("tx-1")).as_deref(), Some("tx-1"));
        for cut in 0..bytes.len() {
            assert_eq!(decode_value("tx-1", &bytes[..cut]), None);
        }
    }
}
