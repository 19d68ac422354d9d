//! Weighted fair sharing of Wasm execution slots between tenants, so one
//! tenant's heavy traffic cannot take every slot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

/// What a tenant asks the scheduler for: its weight, and how many slots it
/// may hold at once (`cap`, 0 = no cap beyond the free slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotShare {
    pub weight: u32,
    pub cap: usize,
}

impl Default for SlotShare {
    fn default() -> Self {
        Self { weight: 1, cap: 0 }
    }
}

/// A weight alone: no cap.
impl From<u32> for SlotShare {
    fn from(weight: u32) -> Self {
        Self { weight, cap: 0 }
    }
}

/// `slots` module instances that may run at once, shared between tenants
/// by weight: start-time fair queuing on measured hold time.
///
/// Each tenant has a virtual time that a grant advances by its expected
/// hold over its weight, corrected to the measured hold on release; a freed
/// slot goes to the waiting tenant with the smallest virtual time (FIFO
/// within a tenant), so a tenant whose batches take 10× longer gets 10×
/// fewer grants. A tenant turning active again starts no earlier than the
/// last grant's virtual time: idleness banks no credit. Clones share slots.
#[derive(Debug, Clone)]
pub struct FairScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    free: usize,
    /// Virtual time of the last grant: the floor for a tenant turning active.
    vclock: f64,
    tenants: Vec<Tenant>,
    index: HashMap<String, usize>,
    waiting: usize,
    next_seq: u64,
}

#[derive(Debug, Default)]
struct Tenant {
    name: String,
    /// Seconds held over weight, plus the expected hold of running grants.
    vtime: f64,
    /// Moving average of the hold time, seconds.
    expected: f64,
    held: Duration,
    running: usize,
    /// Slots it may hold at once (0 = any), from its latest request.
    cap: usize,
    queue: VecDeque<Waiter>,
}

impl Tenant {
    /// Whether another grant would stay within its cap.
    fn under_cap(&self) -> bool {
        self.cap == 0 || self.running < self.cap
    }
}

#[derive(Debug)]
struct Waiter {
    seq: u64,
    weight: u32,
    grant: oneshot::Sender<Grant>,
}

#[derive(Debug)]
struct Grant {
    charged: f64,
    start: Instant,
}

impl State {
    fn tenant(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let (name, vtime) = (name.to_owned(), self.vclock);
        self.tenants.push(Tenant {
            name: name.clone(),
            vtime,
            ..Tenant::default()
        });
        self.index.insert(name, self.tenants.len() - 1);
        self.tenants.len() - 1
    }

    fn start(&mut self, i: usize, weight: u32) -> Grant {
        let t = &mut self.tenants[i];
        self.vclock = self.vclock.max(t.vtime);
        let charged = t.expected / f64::from(weight);
        t.vtime += charged;
        t.running += 1;
        Grant {
            charged,
            start: Instant::now(),
        }
    }

    /// Frees a slot; `measured` holds feed the expected hold time.
    fn finish(&mut self, i: usize, weight: u32, grant: Grant, measured: bool) {
        let elapsed = grant.start.elapsed();
        let t = &mut self.tenants[i];
        t.running -= 1;
        t.held += elapsed;
        t.vtime += elapsed.as_secs_f64() / f64::from(weight) - grant.charged;
        if measured {
            let e = elapsed.as_secs_f64();
            t.expected = if t.expected == 0.0 {
                e
            } else {
                0.75 * t.expected + 0.25 * e
            };
        }
        self.free += 1;
        self.dispatch();
    }

    /// Hands free slots to waiters, smallest virtual time first.
    fn dispatch(&mut self) {
        while self.free > 0 {
            let next = self
                .tenants
                .iter()
                .enumerate()
                .filter(|(_, t)| t.under_cap())
                .filter_map(|(i, t)| t.queue.front().map(|w| (t.vtime, w.seq, i)))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let Some((_, _, i)) = next else { return };
            let waiter = self.tenants[i].queue.pop_front().expect("front seen");
            self.waiting -= 1;
            if waiter.grant.is_closed() {
                continue;
            }
            let grant = self.start(i, waiter.weight);
            match waiter.grant.send(grant) {
                Ok(()) => self.free -= 1,
                Err(grant) => {
                    let t = &mut self.tenants[i];
                    t.running -= 1;
                    t.vtime -= grant.charged;
                }
            }
        }
    }
}

impl FairScheduler {
    /// `slots` is at least 1.
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            inner: Arc::new(Inner {
                slots,
                state: Mutex::new(State {
                    free: slots,
                    ..State::default()
                }),
            }),
        }
    }

    /// Waits for a slot for `tenant` (`""` for untenanted work) with its
    /// share's weight (0 counts as 1), while the tenant holds fewer than
    /// its share's cap. Cancel-safe.
    pub async fn acquire(&self, tenant: &str, share: impl Into<SlotShare>) -> FairPermit {
        let share = share.into();
        let weight = share.weight.max(1);
        let (tenant, rx) = {
            let mut guard = self.inner.lock();
            let s = &mut *guard;
            let i = s.tenant(tenant);
            let t = &mut s.tenants[i];
            t.cap = share.cap;
            if t.running == 0 && t.queue.is_empty() {
                t.vtime = t.vtime.max(s.vclock);
            }
            if s.free > 0 && s.waiting == 0 && s.tenants[i].under_cap() {
                s.free -= 1;
                let grant = s.start(i, weight);
                return self.permit(i, weight, grant);
            }
            let (tx, rx) = oneshot::channel();
            let seq = s.next_seq;
            s.next_seq += 1;
            s.tenants[i].queue.push_back(Waiter {
                seq,
                weight,
                grant: tx,
            });
            s.waiting += 1;
            s.dispatch();
            (i, rx)
        };
        let mut wait = Wait {
            inner: &self.inner,
            tenant,
            weight,
            rx: Some(rx),
        };
        let grant = wait.rx.as_mut().expect("set above").await;
        wait.rx = None;
        self.permit(
            tenant,
            weight,
            grant.expect("the scheduler outlives its waiters"),
        )
    }

    fn permit(&self, tenant: usize, weight: u32, grant: Grant) -> FairPermit {
        FairPermit {
            inner: self.inner.clone(),
            tenant,
            weight,
            grant: Some(grant),
        }
    }

    /// Callers waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.inner.lock().waiting
    }

    /// Slots in all.
    pub fn slots(&self) -> usize {
        self.inner.slots
    }

    /// Total time each tenant has held slots (released permits), for status
    /// and metrics.
    pub fn usage(&self) -> Vec<(String, Duration)> {
        let s = self.inner.lock();
        s.tenants.iter().map(|t| (t.name.clone(), t.held)).collect()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queued `acquire`: dropped unserved, it leaves the queue, or hands on a
/// slot granted in the meantime.
struct Wait<'a> {
    inner: &'a Inner,
    tenant: usize,
    weight: u32,
    rx: Option<oneshot::Receiver<Grant>>,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        rx.close();
        let mut s = self.inner.lock();
        match rx.try_recv() {
            Ok(grant) => s.finish(self.tenant, self.weight, grant, false),
            Err(_) => {
                let queue = &mut s.tenants[self.tenant].queue;
                let before = queue.len();
                queue.retain(|w| !w.grant.is_closed());
                let removed = before - queue.len();
                s.waiting -= removed;
            }
        }
    }
}

/// One execution slot; dropping it frees the slot and charges the tenant
/// the time held over its weight.
#[derive(Debug)]
pub struct FairPermit {
    inner: Arc<Inner>,
    tenant: usize,
    weight: u32,
    grant: Option<Grant>,
}

impl Drop for FairPermit {
    fn drop(&mut self) {
        if let Some(grant) = self.grant.take() {
            self.inner
                .lock()
                .finish(self.tenant, self.weight, grant, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        match f.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    /// `n` tasks of `tenant` acquiring and holding for `hold`, forever.
    fn workers(
        s: &FairScheduler,
        tenant: &'static str,
        weight: impl Into<SlotShare> + Copy + Send + 'static,
        hold: Duration,
        n: usize,
        grants: &Arc<AtomicUsize>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let (s, grants) = (s.clone(), grants.clone());
                tokio::spawn(async move {
                    loop {
                        let _permit = s.acquire(tenant, weight).await;
                        grants.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(hold).await;
                    }
                })
            })
            .collect()
    }

    fn held(s: &FairScheduler, tenant: &str) -> f64 {
        let usage = s.usage().into_iter().find(|(t, _)| t == tenant);
        usage.map_or(0.0, |(_, d)| d.as_secs_f64())
    }

    #[tokio::test(start_paused = true)]
    async fn grants_follow_weights() {
        let s = FairScheduler::new(1);
        let (a, b) = (Arc::default(), Arc::default());
        let ms10 = Duration::from_millis(10);
        let mut tasks = workers(&s, "a", 3, ms10, 4, &a);
        tasks.extend(workers(&s, "b", 1, ms10, 4, &b));
        tokio::time::sleep(Duration::from_secs(10)).await;
        tasks.iter().for_each(|t| t.abort());
        let ratio = a.load(Ordering::Relaxed) as f64 / b.load(Ordering::Relaxed) as f64;
        assert!((ratio - 3.0).abs() <= 0.3, "a:b = {ratio}");
    }

    #[tokio::test(start_paused = true)]
    async fn longer_holds_get_fewer_grants() {
        let s = FairScheduler::new(1);
        let (a, b) = (Arc::default(), Arc::default());
        let mut tasks = workers(&s, "a", 1, Duration::from_millis(100), 4, &a);
        tasks.extend(workers(&s, "b", 1, Duration::from_millis(10), 4, &b));
        tokio::time::sleep(Duration::from_secs(10)).await;
        tasks.iter().for_each(|t| t.abort());
        let ratio = held(&s, "a") / held(&s, "b");
        assert!((ratio - 1.0).abs() <= 0.1, "held a:b = {ratio}");
    }

    #[tokio::test(start_paused = true)]
    async fn returning_idle_tenant_does_not_monopolise() {
        let s = FairScheduler::new(1);
        drop(s.acquire("b", 1).await);
        let (a, b) = (Arc::default(), Arc::default());
        let ms10 = Duration::from_millis(10);
        let mut tasks = workers(&s, "a", 1, ms10, 2, &a);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (a0, b0) = (held(&s, "a"), held(&s, "b"));
        tasks.extend(workers(&s, "b", 1, ms10, 2, &b));
        tokio::time::sleep(Duration::from_secs(2)).await;
        tasks.iter().for_each(|t| t.abort());
        let share = (held(&s, "b") - b0) / (held(&s, "a") - a0 + held(&s, "b") - b0);
        assert!((0.4..=0.6).contains(&share), "b's share = {share}");
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_waiters_leak_no_slot() {
        let s = FairScheduler::new(1);
        let held = s.acquire("a", 1).await;
        // Dropped while queued.
        let timed_out = tokio::time::timeout(Duration::from_millis(10), s.acquire("b", 1));
        assert!(timed_out.await.is_err());
        assert_eq!(s.waiting(), 0);
        // Granted the slot, then dropped before seeing it: the slot moves on.
        let mut granted_then_dropped = Box::pin(s.acquire("b", 1));
        assert!(poll_once(granted_then_dropped.as_mut()).is_none());
        let next = tokio::spawn({
            let s = s.clone();
            async move { s.acquire("c", 1).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(s.waiting(), 2);
        drop(held);
        assert_eq!(s.waiting(), 1);
        drop(granted_then_dropped);
        drop(next.await.unwrap());
        assert_eq!(s.waiting(), 0);
        let mut again = pin!(s.acquire("a", 1));
        assert!(poll_once(again.as_mut()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn two_slots_run_two_at_once() {
        let s = FairScheduler::new(2);
        assert_eq!(s.slots(), 2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let (s, running, most) = (s.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    for _ in 0..4 {
                        let _permit = s.acquire(["a", "b", ""][i % 3], 1).await;
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let start = Instant::now();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // 20 holds of 100 ms, two at a time.
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1) && took <= Duration::from_millis(1002));
        let total: f64 = s.usage().iter().map(|(_, d)| d.as_secs_f64()).sum();
        assert!((total - 2.0).abs() < 1e-6);
    }

    /// A tenant whose batches hold their slot for long (a module sleeping
    /// to its wall-clock limit) takes every free slot before the scheduler
    /// has measured it; its cap leaves the rest to others at once.
    #[tokio::test(start_paused = true)]
    async fn a_capped_tenant_leaves_the_other_slots_free() {
        for (cap, expect_good_served) in [(0, false), (1, true)] {
            let s = FairScheduler::new(2);
            let (sleeper, good) = (Arc::default(), Arc::default());
            let share = SlotShare { weight: 1, cap };
            let mut tasks = workers(&s, "sleeper", share, Duration::from_secs(30), 2, &sleeper);
            tokio::time::sleep(Duration::from_millis(1)).await;
            tasks.extend(workers(&s, "good", 1, Duration::from_millis(10), 1, &good));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (slept, served) = (
                sleeper.load(Ordering::Relaxed),
                good.load(Ordering::Relaxed),
            );
            tasks.iter().for_each(|t| t.abort());
            if expect_good_served {
                assert_eq!(slept, 1, "cap 1: one slot for the sleeper");
                assert!(
                    served >= 90,
                    "cap 1: the good tenant ran {served} batches in 1 s"
                );
            } else {
                assert_eq!(
                    (slept, served),
                    (2, 0),
                    "no cap: the sleeper holds both slots"
                );
            }
        }
    }
}
