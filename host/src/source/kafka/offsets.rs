//! Which offsets may be committed.
//!
//! Batches of a partition are registered in order; each completes when all
//! of its acknowledgement units are acked, in any order. The committable
//! offset is the end of the longest completed prefix, so an offset never
//! moves past a record whose documents are still in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `(topic, partition)`
pub type TopicPartition = (Arc<str>, i32);

/// Identifies one registered batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    tp: TopicPartition,
    generation: u64,
    seq: u64,
}

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    /// Sequence number of `pending[0]`.
    base_seq: u64,
    /// `(last offset of the batch, completed?)`
    pending: VecDeque<(i64, bool)>,
}

/// Receives the next offset to commit (one past the last completed record).
/// Called with the tracker locked: it must not call back into the tracker.
pub type StoreFn = Box<dyn Fn(&str, i32, i64) + Send + Sync>;

/// Tracks in-flight batches per assigned partition.
pub struct OffsetTracker {
    state: Mutex<HashMap<TopicPartition, PartitionState>>,
    drained: Condvar,
    generations: AtomicU64,
    store: StoreFn,
}

impl OffsetTracker {
    pub fn new(store: StoreFn) -> Self {
        Self {
            state: Mutex::new(HashMap::new()),
            drained: Condvar::new(),
            generations: AtomicU64::new(1),
            store,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, PartitionState>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking a partition (on assignment). Batches registered under
    /// an earlier assignment of it no longer count.
    pub fn assign(&self, tp: TopicPartition) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            tp,
            PartitionState {
                generation,
                base_seq: 0,
                pending: VecDeque::new(),
            },
        );
    }

    /// Stops tracking a partition (on revoke): late completions are ignored,
    /// their records will be redelivered to the partition's next owner.
    pub fn revoke(&self, tp: &TopicPartition) {
        self.lock().remove(tp);
        self.drained.notify_all();
    }

    /// Stops tracking every partition (at shutdown, after the final
    /// commit): batches still in flight then never complete, and revoking
    /// the partitions when the consumer closes must not wait for them.
    pub fn revoke_all(&self) {
        self.lock().clear();
        self.drained.notify_all();
    }

    /// Registers the next batch of `tp`, ending at `last_offset`. `None` if
    /// the partition is not assigned (the batch must be discarded).
    pub fn begin(&self, tp: &TopicPartition, last_offset: i64) -> Option<Ticket> {
        let mut state = self.lock();
        let s = state.get_mut(tp)?;
        let seq = s.base_seq + s.pending.len() as u64;
        s.pending.push_back((last_offset, false));
        Some(Ticket {
            tp: tp.clone(),
            generation: s.generation,
            seq,
        })
    }

    /// Marks a batch complete; stores the new committable offset if the
    /// completed prefix grew.
    ///
    /// The store runs under the tracker's lock, so it is ordered with
    /// [`revoke`](Self::revoke): once a revoke returns, no completion of the
    /// old assignment can still be on its way to the store. (A store landing
    /// after the revoke's commit and forget would leave a stale offset
    /// pending, which a later commit would write over the new owner's.)
    pub fn complete(&self, ticket: &Ticket) {
        let mut state = self.lock();
        let Some(s) = state.get_mut(&ticket.tp) else {
            return;
        };
        if s.generation != ticket.generation || ticket.seq < s.base_seq {
            return;
        }
        let Some(slot) = s.pending.get_mut((ticket.seq - s.base_seq) as usize) else {
            return;
        };
        slot.1 = true;
        let mut commit = None;
        while let Some(&(last, true)) = s.pending.front() {
            s.pending.pop_front();
            s.base_seq += 1;
            commit = Some(last + 1);
        }
        if s.pending.is_empty() {
            self.drained.notify_all();
        }
        if let Some(next) = commit {
            (self.store)(&ticket.tp.0, ticket.tp.1, next);
        }
    }

    /// Whether the ticket's partition is still assigned under the assignment
    /// it was issued in (a completion would still move its offset).
    pub fn is_current(&self, ticket: &Ticket) -> bool {
        self.lock()
            .get(&ticket.tp)
            .is_some_and(|s| s.generation == ticket.generation)
    }

    /// Whether none of `tps` has a batch in flight.
    pub fn is_drained(&self, tps: &[TopicPartition]) -> bool {
        let state = self.lock();
        tps.iter()
            .all(|tp| state.get(tp).is_none_or(|s| s.pending.is_empty()))
    }

    /// Batches registered but not yet complete, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.lock().values().map(|s| s.pending.len()).sum()
    }

    /// Blocks until none of `tps` has a batch in flight, or `timeout`.
    /// Returns whether they drained. (Used from librdkafka's rebalance
    /// callback, which is synchronous.)
    pub fn wait_drained(&self, tps: &[TopicPartition], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let busy = tps
                .iter()
                .any(|tp| state.get(tp).is_some_and(|s| !s.pending.is_empty()));
            if !busy {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .drained
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets the tracker stored: (topic, partition, next offset).
    type Stored = Arc<Mutex<Vec<(String, i32, i64)>>>;

    fn tracker() -> (Arc<OffsetTracker>, Stored) {
        let stored = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&stored);
        let t = OffsetTracker::new(Box::new(move |topic, p, o| {
            s.lock().unwrap().push((topic.to_string(), p, o))
        }));
        (Arc::new(t), stored)
    }

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    #[test]
    fn commits_only_the_completed_prefix() {
        let (t, stored) = tracker();
        t.assign(tp(0));
        let a = t.begin(&tp(0), 9).unwrap();
        let b = t.begin(&tp(0), 19).unwrap();
        let c = t.begin(&tp(0), 29).unwrap();
        t.complete(&b);
        assert!(stored.lock().unwrap().is_empty(), "b done but a in flight");
        t.complete(&a);
        assert_eq!(stored.lock().unwrap().last(), Some(&("t".into(), 0, 20)));
        t.complete(&c);
        assert_eq!(stored.lock().unwrap().last(), Some(&("t".into(), 0, 30)));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let (t, stored) = tracker();
        t.assign(tp(0));
        t.assign(tp(1));
        let _a = t.begin(&tp(0), 5).unwrap();
        let b = t.begin(&tp(1), 7).unwrap();
        t.complete(&b);
        assert_eq!(*stored.lock().unwrap(), vec![("t".into(), 1, 8)]);
    }

    #[test]
    fn completions_from_an_old_assignment_are_ignored() {
        let (t, stored) = tracker();
        t.assign(tp(0));
        let old = t.begin(&tp(0), 50).unwrap();
        t.revoke(&tp(0));
        assert!(
            t.begin(&tp(0), 60).is_none(),
            "unassigned partitions take no batches"
        );
        t.assign(tp(0));
        let new = t.begin(&tp(0), 10).unwrap();
        t.complete(&old);
        assert!(stored.lock().unwrap().is_empty());
        t.complete(&new);
        assert_eq!(*stored.lock().unwrap(), vec![("t".into(), 0, 11)]);
    }

    /// A completion whose store is still running when its partition is
    /// revoked: the revoke must not return before the store did, or the
    /// revoke's commit-and-forget misses the offset and it stays pending.
    #[test]
    fn a_revoke_waits_for_a_completion_already_storing() {
        use std::sync::atomic::AtomicBool;
        use std::sync::mpsc;
        let revoked = Arc::new(AtomicBool::new(false));
        let stored_after_revoke = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let t = {
            let revoked = Arc::clone(&revoked);
            let late = Arc::clone(&stored_after_revoke);
            Arc::new(OffsetTracker::new(Box::new(move |_, _, _| {
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
                late.store(revoked.load(Ordering::SeqCst), Ordering::SeqCst);
            })))
        };
        t.assign(tp(0));
        let ticket = t.begin(&tp(0), 7).unwrap();
        let completer = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || t.complete(&ticket))
        };
        entered.recv().unwrap();
        let (revoke_done_tx, revoke_done) = mpsc::channel::<()>();
        let revoker = {
            let t = Arc::clone(&t);
            let revoked = Arc::clone(&revoked);
            std::thread::spawn(move || {
                t.revoke(&tp(0));
                revoked.store(true, Ordering::SeqCst);
                revoke_done_tx.send(()).unwrap();
            })
        };
        // Without the ordering the revoke returns at once; with it, it
        // waits for the store, so this times out.
        let returned_early = revoke_done.recv_timeout(Duration::from_millis(300)).is_ok();
        release.send(()).unwrap();
        completer.join().unwrap();
        revoker.join().unwrap();
        assert!(
            !returned_early,
            "the revoke returned while a store was running"
        );
        assert!(!stored_after_revoke.load(Ordering::SeqCst));
    }

    #[test]
    fn wait_drained_returns_when_batches_complete() {
        let (t, _) = tracker();
        t.assign(tp(0));
        let a = t.begin(&tp(0), 1).unwrap();
        assert!(!t.wait_drained(&[tp(0)], Duration::from_millis(20)));
        let t2 = Arc::clone(&t);
        let h = std::thread::spawn(move || t2.wait_drained(&[tp(0)], Duration::from_secs(30)));
        t.complete(&a);
        assert!(h.join().unwrap());
    }

    #[test]
    fn revoke_all_releases_waiters_and_ignores_late_completions() {
        let (t, stored) = tracker();
        t.assign(tp(0));
        t.assign(tp(1));
        let a = t.begin(&tp(0), 4).unwrap();
        let _b = t.begin(&tp(1), 9).unwrap();
        let t2 = Arc::clone(&t);
        let h =
            std::thread::spawn(move || t2.wait_drained(&[tp(0), tp(1)], Duration::from_secs(30)));
        t.revoke_all();
        assert!(h.join().unwrap(), "the waiter is released");
        assert_eq!(t.in_flight(), 0);
        t.complete(&a);
        assert!(
            stored.lock().unwrap().is_empty(),
            "a late completion stores nothing"
        );
    }
}
