//! Offset commits with exactly-once dead letters: the offsets the tracker
//! makes committable are not stored in the consumer (librdkafka's
//! auto-commit is off) but collected here, and committed every
//! `kafka.commit_interval`, on revoke and at shutdown through the
//! `pipeline::TransactionalCommit` port, which writes them in one Kafka
//! transaction with the dead letters of the records they cover. Offsets
//! that cover no dead letter are committed by the consumer itself: a plain
//! commit, no transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;

use super::offsets::TopicPartition;
use crate::pipeline::{CommitError, CommitOffset, TransactionalCommit};
use crate::telemetry::{Metrics, PartitionLabels, ResultLabels};

/// What a commit needs of the consumer: its group membership (for a
/// transaction's offsets) and a plain synchronous offset commit (for
/// offsets that cover no dead letter). The source's consumers implement
/// it (`context.rs`).
pub trait GroupMember {
    fn membership(&self) -> Option<ConsumerGroupMetadata>;
    fn commit_plain(&self, offsets: &[CommitOffset]) -> Result<(), CommitError>;
}

/// Committable offsets waiting for their transaction.
pub struct TransactionalOffsets {
    pending: Mutex<HashMap<TopicPartition, i64>>,
    port: Arc<dyn TransactionalCommit<Group = ConsumerGroupMetadata>>,
    /// Held from taking the pending offsets until their transaction ends,
    /// and across a revoke's commit and forget: a periodic commit that
    /// took a partition's offset before its revoke must not land after
    /// it, when the partition's new owner may have committed further.
    committing: Mutex<()>,
    metrics: Metrics,
    /// Set when the producer can never commit again (fenced): the source
    /// stops with this error.
    fatal: Mutex<Option<String>>,
}

impl TransactionalOffsets {
    pub fn new(
        port: Arc<dyn TransactionalCommit<Group = ConsumerGroupMetadata>>,
        metrics: Metrics,
    ) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            port,
            committing: Mutex::new(()),
            metrics,
            fatal: Mutex::new(None),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, i64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tracker's store callback: `next` is committable for the partition.
    pub fn store(&self, topic: &str, partition: i32, next: i64) {
        self.pending().insert((Arc::from(topic), partition), next);
    }

    /// The error that ended transactional commits, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Commits every pending offset, with the dead letters it covers, as
    /// one transaction (a plain commit if it covers none). Blocks up to
    /// about `timeout`. On failure nothing moved: the offsets stay pending
    /// for the next commit.
    pub fn commit_pending(
        &self,
        member: &impl GroupMember,
        timeout: Duration,
    ) -> Result<(), CommitError> {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        self.commit_locked(member, timeout)
    }

    /// Partitions being revoked: commits what is pending (with its dead
    /// letters), runs `stop_tracking` (after which no completion stores an
    /// offset for them), then forgets them; no other commit runs in
    /// between or is still running once this returns. A failed commit is
    /// logged; the partitions' records after their last commit are
    /// redelivered to the next owner, with their dead letters.
    pub fn revoke(
        &self,
        member: &impl GroupMember,
        tps: &[TopicPartition],
        timeout: Duration,
        stop_tracking: impl FnOnce(),
    ) {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.commit_locked(member, timeout);
        stop_tracking();
        for tp in tps {
            self.forget(tp);
        }
    }

    fn commit_locked(
        &self,
        member: &impl GroupMember,
        timeout: Duration,
    ) -> Result<(), CommitError> {
        if let Some(fatal) = self.fatal() {
            return Err(CommitError::Fatal(fatal));
        }
        let offsets: Vec<CommitOffset> = self
            .pending()
            .iter()
            .map(|((topic, partition), next)| CommitOffset {
                topic: Arc::clone(topic),
                partition: *partition,
                next: *next,
            })
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        // No dead letter rides along: the consumer commits the offsets
        // (its commit callback counts the commit). Dead letters held below
        // them were held before their batches completed, so none can
        // appear between this check and the commit.
        if !self.port.covers_dead_letters(&offsets) {
            let result = member.commit_plain(&offsets);
            if let Err(e) = &result {
                tracing::warn!(error = %e, "offset commit failed; the offsets stay for the next one");
            } else {
                self.committed(&offsets);
            }
            return result;
        }
        let result = match member.membership() {
            Some(group) => self.port.commit(&offsets, &group, timeout),
            None => Err(CommitError::Retry("no consumer group metadata yet".into())),
        };
        let label = ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" }.into(),
        };
        self.metrics.commits.get_or_create(&label).inc();
        match &result {
            Ok(()) => self.committed(&offsets),
            Err(CommitError::Retry(e)) => {
                tracing::warn!(error = %e, "transactional offset commit failed; offsets and dead letters stay for the next one");
            }
            Err(CommitError::Fatal(e)) => {
                tracing::error!(error = %e, "the transactional dead-letter producer can no longer commit (fenced by another host with the same kafka.instance_id?)");
                *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
            }
        }
        result
    }

    /// Offsets that were committed leave the pending set (unless a later
    /// one replaced them meanwhile).
    fn committed(&self, offsets: &[CommitOffset]) {
        let mut pending = self.pending();
        for o in offsets {
            let tp = (Arc::clone(&o.topic), o.partition);
            if pending.get(&tp) == Some(&o.next) {
                pending.remove(&tp);
            }
            self.metrics
                .committed_offset
                .get_or_create(&PartitionLabels {
                    topic: o.topic.to_string(),
                    partition: o.partition,
                })
                .set(o.next);
        }
    }

    /// A partition this host no longer owns (after its revoke commit), or
    /// owns anew: its uncommitted offset and held dead letters are dropped;
    /// the records after its last commit are delivered again.
    pub fn forget(&self, tp: &TopicPartition) {
        self.pending().remove(tp);
        self.port.release(&tp.0, tp.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    /// Records every commit it is asked for; answers with `answer`. Says
    /// every commit covers dead letters unless `covers_none` is set.
    #[derive(Default)]
    struct Port {
        commits: Mutex<Vec<Vec<(String, i32, i64)>>>,
        released: Mutex<Vec<(String, i32)>>,
        answer: Mutex<Option<CommitError>>,
        covers_none: std::sync::atomic::AtomicBool,
    }

    fn sorted(offsets: &[CommitOffset]) -> Vec<(String, i32, i64)> {
        let mut o: Vec<_> = offsets
            .iter()
            .map(|o| (o.topic.to_string(), o.partition, o.next))
            .collect();
        o.sort();
        o
    }

    impl TransactionalCommit for Port {
        type Group = ConsumerGroupMetadata;
        fn covers_dead_letters(&self, _offsets: &[CommitOffset]) -> bool {
            !self.covers_none.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn commit(
            &self,
            offsets: &[CommitOffset],
            _group: &ConsumerGroupMetadata,
            _timeout: Duration,
        ) -> Result<(), CommitError> {
            self.commits.lock().unwrap().push(sorted(offsets));
            match self.answer.lock().unwrap().take() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        fn release(&self, topic: &str, partition: i32) {
            self.released
                .lock()
                .unwrap()
                .push((topic.to_string(), partition));
        }
    }

    /// Group metadata of a consumer that never connects (nothing listens
    /// on port 1 of loopback).
    fn group() -> Option<ConsumerGroupMetadata> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "g")
            .set("log_level", "0")
            .create()
            .unwrap();
        consumer.group_metadata()
    }

    /// The consumer's side: group metadata (if `in_group`) and plain
    /// commits, recorded and answered with `answer`.
    #[derive(Default)]
    struct Member {
        in_group: bool,
        plain: Mutex<Vec<Vec<(String, i32, i64)>>>,
        answer: Mutex<Option<CommitError>>,
    }

    impl GroupMember for Member {
        fn membership(&self) -> Option<ConsumerGroupMetadata> {
            if self.in_group { group() } else { None }
        }
        fn commit_plain(&self, offsets: &[CommitOffset]) -> Result<(), CommitError> {
            self.plain.lock().unwrap().push(sorted(offsets));
            match self.answer.lock().unwrap().take() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    fn member() -> Member {
        Member {
            in_group: true,
            ..Member::default()
        }
    }

    fn setup() -> (Arc<Port>, TransactionalOffsets) {
        let port = Arc::new(Port::default());
        let metrics = Metrics::register(&mut Registry::default());
        let offsets = TransactionalOffsets::new(Arc::clone(&port) as _, metrics);
        (port, offsets)
    }

    #[test]
    fn a_failed_commit_leaves_its_offsets_for_the_next_and_a_fatal_one_sticks() {
        let (port, t) = setup();
        assert!(t.commit_pending(&member(), Duration::from_secs(1)).is_ok());
        assert!(
            port.commits.lock().unwrap().is_empty(),
            "nothing pending, no transaction"
        );
        t.store("a", 0, 10);
        t.store("a", 1, 4);
        t.store("a", 0, 12);
        *port.answer.lock().unwrap() = Some(CommitError::Retry("broker away".into()));
        assert!(t.commit_pending(&member(), Duration::from_secs(1)).is_err());
        t.commit_pending(&member(), Duration::from_secs(1)).unwrap();
        t.commit_pending(&member(), Duration::from_secs(1)).unwrap();
        let want = vec![("a".to_string(), 0, 12), ("a".to_string(), 1, 4)];
        assert_eq!(
            *port.commits.lock().unwrap(),
            vec![want.clone(), want],
            "the failed offsets again, then nothing left"
        );
        // Without group metadata nothing can be committed.
        t.store("a", 0, 20);
        assert!(matches!(
            t.commit_pending(&Member::default(), Duration::from_secs(1)),
            Err(CommitError::Retry(_))
        ));
        *port.answer.lock().unwrap() = Some(CommitError::Fatal("fenced".into()));
        assert!(t.commit_pending(&member(), Duration::from_secs(1)).is_err());
        assert_eq!(t.fatal().as_deref(), Some("fenced"));
        assert!(matches!(
            t.commit_pending(&member(), Duration::from_secs(1)),
            Err(CommitError::Fatal(_))
        ));
        assert_eq!(
            port.commits.lock().unwrap().len(),
            3,
            "no transaction after fatal"
        );
    }

    /// Offsets that cover no dead letter go to the consumer's plain
    /// commit: no transaction. A failed one leaves them pending; once dead
    /// letters are covered again, the transaction carries them.
    #[test]
    fn offsets_covering_no_dead_letter_are_a_plain_commit() {
        let (port, t) = setup();
        port.covers_none
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let m = member();
        t.store("a", 0, 10);
        *m.answer.lock().unwrap() = Some(CommitError::Retry("coordinator away".into()));
        assert!(t.commit_pending(&m, Duration::from_secs(1)).is_err());
        t.store("a", 1, 3);
        t.commit_pending(&m, Duration::from_secs(1)).unwrap();
        t.commit_pending(&m, Duration::from_secs(1)).unwrap();
        assert_eq!(
            *m.plain.lock().unwrap(),
            vec![
                vec![("a".to_string(), 0, 10)],
                vec![("a".to_string(), 0, 10), ("a".to_string(), 1, 3)],
            ],
            "the failed offset again with the new one, then nothing left"
        );
        assert!(port.commits.lock().unwrap().is_empty(), "no transaction");
        port.covers_none
            .store(false, std::sync::atomic::Ordering::SeqCst);
        t.store("a", 0, 20);
        t.commit_pending(&m, Duration::from_secs(1)).unwrap();
        assert_eq!(
            *port.commits.lock().unwrap(),
            vec![vec![("a".to_string(), 0, 20)]]
        );
        assert_eq!(m.plain.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_forgotten_partition_is_neither_committed_nor_holding_dead_letters() {
        let (port, t) = setup();
        t.store("a", 0, 10);
        t.store("a", 1, 7);
        t.forget(&(Arc::from("a"), 0));
        t.commit_pending(&member(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            *port.commits.lock().unwrap(),
            vec![vec![("a".to_string(), 1, 7)]]
        );
        assert_eq!(*port.released.lock().unwrap(), vec![("a".to_string(), 0)]);
    }

    /// A commit port whose first transaction waits for `proceed`; every
    /// step goes to one log, in order.
    struct SlowPort {
        log: Mutex<Vec<String>>,
        entered: Mutex<Option<std::sync::mpsc::Sender<()>>>,
        proceed: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl TransactionalCommit for SlowPort {
        type Group = ConsumerGroupMetadata;
        fn covers_dead_letters(&self, _offsets: &[CommitOffset]) -> bool {
            true
        }
        fn commit(
            &self,
            offsets: &[CommitOffset],
            _group: &ConsumerGroupMetadata,
            _timeout: Duration,
        ) -> Result<(), CommitError> {
            let mut o: Vec<_> = offsets.iter().map(|o| o.partition).collect();
            o.sort();
            let first = self.entered.lock().unwrap().take();
            if let Some(entered) = first {
                entered.send(()).unwrap();
                self.proceed.lock().unwrap().recv().unwrap();
            }
            self.log.lock().unwrap().push(format!("committed {o:?}"));
            Ok(())
        }
        fn release(&self, _topic: &str, _partition: i32) {}
    }

    /// The race behind a rebalance test that hung: a periodic commit took
    /// partition 0's offset, the partition was revoked (and could be
    /// committed further by its next owner), and then the old commit
    /// landed, moving the group's offset back.
    #[test]
    fn no_commit_taken_before_a_revoke_lands_after_it() {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (proceed, proceed_rx) = std::sync::mpsc::channel();
        let port = Arc::new(SlowPort {
            log: Mutex::default(),
            entered: Mutex::new(Some(entered_tx)),
            proceed: Mutex::new(proceed_rx),
        });
        let metrics = Metrics::register(&mut Registry::default());
        let t = Arc::new(TransactionalOffsets::new(Arc::clone(&port) as _, metrics));
        t.store("a", 0, 10);
        t.store("a", 1, 5);
        let periodic = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || t.commit_pending(&member(), Duration::from_secs(1)))
        };
        entered.recv().unwrap();
        let (revoked_tx, revoked) = std::sync::mpsc::channel();
        let revoke = {
            let t = Arc::clone(&t);
            let port = Arc::clone(&port);
            std::thread::spawn(move || {
                t.store("a", 0, 12);
                t.revoke(
                    &member(),
                    &[(Arc::from("a"), 0)],
                    Duration::from_secs(1),
                    || {},
                );
                port.log.lock().unwrap().push("revoked".into());
                revoked_tx.send(()).unwrap();
            })
        };
        // Without the commit turn the revoke finishes while the periodic
        // commit is still held; with it, it cannot, and this times out.
        let _ = revoked.recv_timeout(Duration::from_millis(300));
        proceed.send(()).unwrap();
        periodic.join().unwrap().unwrap();
        revoke.join().unwrap();
        let log = port.log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec!["committed [0, 1]", "committed [0]", "revoked"],
            "the periodic commit ends before the revoke's own commit"
        );
        t.store("a", 1, 9);
        t.commit_pending(&member(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            port.log.lock().unwrap().last().unwrap(),
            "committed [1]",
            "the revoked partition is not committed again"
        );
    }
}
