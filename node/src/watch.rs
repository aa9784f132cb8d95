//! `OffsetWatch`: a shard-local, monotonic offset that tasks can wait on.
//!
//! The partition log publishes three of them (written to the page cache, synced to disk,
//! and later the high watermark). A waiter parks until the value reaches its target; the
//! publisher wakes exactly the waiters whose target was reached. Nothing spins and nothing
//! polls. Shard-local by construction (`Rc`/`RefCell`, `!Send`): cross-shard waiters go
//! through the mesh, never through this type.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
struct WatchState {
    value: u64,
    /// Set once, when the resource behind the value has failed: every waiter then returns.
    failed: bool,
    /// Bumped by `abort_waiters`: waiters registered before fail, later ones wait as usual.
    aborts: u64,
    next_id: u64,
    /// Parked waiters by registration id: (target, waker).
    waiters: BTreeMap<u64, (u64, Waker)>,
}

/// A monotonic `u64` with waiters. Cloning shares the same value.
#[derive(Debug, Clone)]
pub struct OffsetWatch {
    state: Rc<RefCell<WatchState>>,
}

/// The watched resource failed before the target was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchFailed;

impl OffsetWatch {
    pub fn new(value: u64) -> OffsetWatch {
        OffsetWatch {
            state: Rc::new(RefCell::new(WatchState {
                value,
                failed: false,
                aborts: 0,
                next_id: 0,
                waiters: BTreeMap::new(),
            })),
        }
    }

    pub fn get(&self) -> u64 {
        self.state.borrow().value
    }

    /// Raises the value (never lowers it) and wakes the waiters it satisfies.
    pub fn advance(&self, value: u64) {
        let woken = {
            let mut s = self.state.borrow_mut();
            if value <= s.value {
                return;
            }
            s.value = value;
            let ready: Vec<u64> = s.waiters.iter().filter(|(_, (t, _))| *t <= value).map(|(id, _)| *id).collect();
            ready.into_iter().filter_map(|id| s.waiters.remove(&id)).map(|(_, w)| w).collect::<Vec<_>>()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Lowers the value without waking anyone: used only when the log is truncated.
    pub fn reset(&self, value: u64) {
        self.state.borrow_mut().value = value;
    }

    /// Marks the watch failed and wakes every waiter.
    pub fn fail(&self) {
        let woken: Vec<Waker> = {
            let mut s = self.state.borrow_mut();
            s.failed = true;
            std::mem::take(&mut s.waiters).into_values().map(|(_, w)| w).collect()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Fails every waiter registered so far (the writes they wait for will never happen),
    /// without failing the watch: waiters that come later wait as usual.
    pub fn abort_waiters(&self) {
        let woken: Vec<Waker> = {
            let mut s = self.state.borrow_mut();
            s.aborts += 1;
            std::mem::take(&mut s.waiters).into_values().map(|(_, w)| w).collect()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    pub fn is_failed(&self) -> bool {
        self.state.borrow().failed
    }

    /// Resolves once the value is at least `target` (returning the value then), or the watch
    /// failed.
    pub fn wait_for(&self, target: u64) -> WaitFor {
        let epoch = self.state.borrow().aborts;
        WaitFor { watch: self.clone(), target, id: None, epoch }
    }
}

/// The future returned by [`OffsetWatch::wait_for`]. Dropping it unregisters the waiter.
#[derive(Debug)]
pub struct WaitFor {
    watch: OffsetWatch,
    target: u64,
    id: Option<u64>,
    /// `aborts` when the wait began: an `abort_waiters` since fails it.
    epoch: u64,
}

impl Future for WaitFor {
    type Output = Result<u64, WatchFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut s = this.watch.state.borrow_mut();
        if s.value >= this.target {
            if let Some(id) = this.id.take() {
                s.waiters.remove(&id);
            }
            return Poll::Ready(Ok(s.value));
        }
        if s.failed || s.aborts != this.epoch {
            if let Some(id) = this.id.take() {
                s.waiters.remove(&id);
            }
            return Poll::Ready(Err(WatchFailed));
        }
        let id = match this.id {
            Some(id) => id,
            None => {
                let id = s.next_id;
                s.next_id += 1;
                this.id = Some(id);
                id
            }
        };
        s.waiters.insert(id, (this.target, cx.waker().clone()));
        Poll::Pending
    }
}

/// Completes when the first of `futures` completes (never, for none), with its output;
/// the others are dropped with it.
pub async fn first_of<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> F::Output {
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(out);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.watch.state.borrow_mut().waiters.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_exactly_when_their_target_is_reached() {
        crate::runtime::test_executor().run(async {
            let w = OffsetWatch::new(0);
            let w5 = glommio::spawn_local(w.wait_for(5));
            let w10 = glommio::spawn_local(w.wait_for(10));
            glommio::executor().yield_now().await;
            w.advance(7);
            assert_eq!(w5.await, Ok(7));
            assert_eq!(w.state.borrow().waiters.len(), 1, "the waiter for 10 is still parked");
            w.advance(3);
            assert_eq!(w.get(), 7, "the value never goes backwards through advance");
            w.advance(10);
            assert_eq!(w10.await, Ok(10));
        });
    }

    #[test]
    fn failure_releases_every_waiter_and_dropped_waiters_unregister() {
        crate::runtime::test_executor().run(async {
            let w = OffsetWatch::new(0);
            {
                let mut dropped = Box::pin(w.wait_for(3));
                futures_poll_once(dropped.as_mut()).await;
                assert_eq!(w.state.borrow().waiters.len(), 1);
            }
            assert_eq!(w.state.borrow().waiters.len(), 0);
            let waiter = glommio::spawn_local(w.wait_for(100));
            glommio::executor().yield_now().await;
            w.fail();
            assert_eq!(waiter.await, Err(WatchFailed));
        });
    }

    async fn futures_poll_once<F: Future + Unpin>(mut f: F) {
        std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut f).poll(cx);
            Poll::Ready(())
        })
        .await
    }
}
