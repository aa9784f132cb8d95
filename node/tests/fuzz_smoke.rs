//! A short, deterministic fuzz run in the ordinary suite (issue #14, Build 6): the fuzz
//! target's code (`sluice::testing::decode_request_frame`: frame header, protocol guard,
//! the crate's decoders as the node runs them, record batch validation) over every seed in
//! `node/fuzz/seeds/request/` — request frames captured from kcat, confluent-kafka and
//! kafka-python (`scripts/fuzz-corpus.sh`) — and over mutations of them from a fixed seed.
//! A panic, an abort or an allocation failure fails the test; the long, coverage-guided
//! run is `scripts/fuzz.sh` (cargo-fuzz, nightly).

use sluice::testing::{decode_request_frame, FrameOutcome};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Mutations per seed.
const MUTATIONS_PER_SEED: usize = 2000;
/// Stops early past this, so the test stays short on a slow machine (checked, not relied on).
const TIME_BOX: Duration = Duration::from_secs(20);

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/request");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run bash scripts/fuzz-corpus.sh)", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).expect("a seed"))
        })
        .collect();
    out.sort();
    out
}

/// One of libFuzzer's simple mutations, chosen by `rng`: flip a byte to an interesting or
/// random value, insert or delete a few bytes, overwrite 2 or 4 bytes with an extreme
/// integer (where lengths and counts live), or cut the frame short.
fn mutate(rng: &mut fastrand::Rng, frame: &mut Vec<u8>) {
    const EXTREMES: [i32; 6] = [0, -1, 1, 0x7fff_ffff, i32::MIN, 0x7fff];
    let at = rng.usize(..frame.len().max(1));
    match rng.u8(..6) {
        0 => {
            if let Some(b) = frame.get_mut(at) {
                *b = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.usize(..5)];
            }
        }
        1 => {
            if let Some(b) = frame.get_mut(at) {
                *b = rng.u8(..);
            }
        }
        2 => {
            let n = rng.usize(1..8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            frame.splice(at.min(frame.len())..at.min(frame.len()), bytes);
        }
        3 => {
            let end = (at + rng.usize(1..8)).min(frame.len());
            frame.drain(at.min(end)..end);
        }
        4 => {
            let value = EXTREMES[rng.usize(..EXTREMES.len())];
            let bytes = if rng.bool() { value.to_be_bytes().to_vec() } else { (value as i16).to_be_bytes().to_vec() };
            for (i, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = frame.get_mut(at + i) {
                    *slot = b;
                }
            }
        }
        _ => frame.truncate(at),
    }
}

/// Every seed decodes (real clients' requests are requests the node serves), and a few
/// hundred thousand mutations of them never panic the path from socket to handler.
#[test]
fn seeds_decode_and_mutations_never_panic() {
    let seeds = seeds();
    assert!(seeds.len() >= 50, "only {} seeds: run bash scripts/fuzz-corpus.sh", seeds.len());
    for (name, frame) in &seeds {
        assert_eq!(decode_request_frame(frame), FrameOutcome::Decoded, "seed {name} is a request the node serves");
    }
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(0x5_1u64 << 32 | 0x1ce);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = 0usize;
    'seeds: for (_, seed) in &seeds {
        for _ in 0..MUTATIONS_PER_SEED {
            let mut frame = seed.clone();
            for _ in 0..rng.usize(1..=4) {
                mutate(&mut rng, &mut frame);
            }
            *outcomes.entry(format!("{:?}", decode_request_frame(&frame))).or_default() += 1;
            runs += 1;
            if started.elapsed() > TIME_BOX {
                break 'seeds;
            }
        }
    }
    eprintln!("fuzz smoke: {} seeds, {runs} mutated frames in {:?}: {outcomes:?}", seeds.len(), started.elapsed());
    assert!(runs >= seeds.len() * 50, "only {runs} mutated frames ran within {TIME_BOX:?}");
    for kind in ["Refused", "Decoded", "Undecodable"] {
        assert!(outcomes.get(kind).is_some_and(|&n| n > 0), "no mutation ended {kind}: {outcomes:?}");
    }
}
