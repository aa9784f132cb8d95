//! Request frame buffers, recycled per thread.
//!
//! Why: a produce request is one frame of up to `socket.request.max.bytes`, and its records
//! live until they are in the page cache. Allocating each frame afresh
//! (`BytesMut::zeroed`) made every large frame a new `mmap`: the shard took a page fault and
//! cleared a page for every 4 KiB received, zeroed it once more, and unmapped it after the
//! request — measured at about a third of the node's CPU under 1 KiB acks=1 produce
//! (`exc_page_fault`, `clear_page_erms`, `memset`, `unmap_page_range` in `perf`, see
//! `bench/RESULTS.md`). A recycled buffer is already mapped and already initialised, so a
//! frame costs the socket read and nothing else.
//!
//! A frame is handed out as `Bytes` (the protocol decoder slices record data out of it
//! without copying); when the last slice is dropped the buffer goes back to the pool of the
//! thread that drops it. Slices may cross shards (a produce for another shard's partition):
//! the buffer then joins that shard's pool, which is as good — every pool is bounded.

use bytes::Bytes;
use std::cell::RefCell;

/// Frames smaller than this use the allocator: small allocations come from the heap, which
/// does not fault pages in and out per request.
pub const POOLED_FRAME_BYTES_MIN: usize = 64 * 1024;

/// Bytes of idle buffers one thread keeps. Past it, returned buffers are freed. Enough for
/// the in-flight produce requests of a few busy connections at `batch.size` 1 MiB.
pub const POOL_BYTES_MAX: usize = 64 << 20;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { idle: Vec::new(), bytes: 0 }) };
}

struct Pool {
    /// Idle buffers, each fully initialised (`len == capacity`).
    idle: Vec<Vec<u8>>,
    bytes: usize,
}

/// A buffer of exactly `len` bytes, initialised (its contents are left-overs: the caller
/// overwrites all of them), to be filled and then frozen with [`freeze`].
pub fn take(len: usize) -> Vec<u8> {
    if len < POOLED_FRAME_BYTES_MIN {
        return vec![0; len];
    }
    let reused = POOL.with(|p| {
        let mut p = p.borrow_mut();
        // The smallest idle buffer that fits: keeps big buffers for big frames.
        let best =
            p.idle.iter().enumerate().filter(|(_, b)| b.len() >= len).min_by_key(|(_, b)| b.len()).map(|(i, _)| i);
        best.map(|i| {
            let b = p.idle.swap_remove(i);
            p.bytes -= b.len();
            b
        })
    });
    let mut buf = reused.unwrap_or_else(|| {
        // Rounded up so the buffer serves the neighbouring frame sizes later.
        vec![0; len.next_power_of_two()]
    });
    // The bytes past `len` stay initialised: `Pooled::drop` relies on it.
    buf.truncate(len);
    buf
}

/// The filled buffer as `Bytes`; the buffer returns to a pool when the last slice drops.
pub fn freeze(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < POOLED_FRAME_BYTES_MIN {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Pooled(buf))
}

/// Owns a pooled buffer while `Bytes` slices of it live.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        let cap = buf.capacity();
        // SAFETY: every pooled buffer was created fully initialised (`vec![0; n]`, len ==
        // capacity) and has only been truncated since (`take`), which leaves the bytes past
        // `len` initialised; `u8` has no invalid values. (`resize` would write them again:
        // a memset of up to half the buffer per request.)
        unsafe { buf.set_len(cap) };
        // A thread being torn down has no pool any more: the buffer is simply freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.bytes + cap <= POOL_BYTES_MAX {
                p.bytes += cap;
                p.idle.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_frame_is_reused_without_a_new_allocation() {
        let mut a = take(100_000);
        a.fill(7);
        let ptr = a.as_ptr();
        let frame = freeze(a);
        let slice = frame.slice(10..20);
        drop(frame);
        // Still referenced by `slice`: not back in the pool yet, so a new buffer is made.
        let other = take(100_000);
        assert_ne!(other.as_ptr(), ptr);
        drop(slice);
        let again = take(90_000);
        assert_eq!(again.as_ptr(), ptr, "the buffer came back to the pool when its last slice dropped");
        assert_eq!(again.len(), 90_000);
        drop(other);
    }

    #[test]
    fn small_frames_are_not_pooled_and_big_ones_are_bounded() {
        let small = freeze(take(100));
        assert_eq!(small.len(), 100);
        let frames: Vec<Bytes> = (0..40).map(|_| freeze(take(4 << 20))).collect();
        drop(frames);
        let kept = POOL.with(|p| p.borrow().bytes);
        assert!(kept <= POOL_BYTES_MAX, "pool holds {kept} bytes");
    }
}
