//! Dead-letter queue: records that cannot be delivered are written, with the
//! reason, to a Kafka topic per pipeline. The offset they came from becomes
//! committable only after the broker acknowledged the dead letter.

pub mod writer;

use tokio::sync::mpsc;

use crate::event::DeadLetter;

/// Handle to the dead-letter writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DeadLetterQueue {
    tx: mpsc::Sender<DeadLetter>,
}

impl DeadLetterQueue {
    /// A queue and the receiving end its writer drains. `capacity` bounds
    /// the dead letters waiting to be written (backpressure on producers).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<DeadLetter>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx }, rx)
    }

    /// Queues a dead letter; waits while the queue is full. The dead
    /// letter's `ack` is acknowledged by the writer once the broker has it.
    /// If the writer is gone (shutdown) the dead letter is dropped
    /// unacknowledged, so its offset is never committed and it is redelivered.
    pub async fn send(&self, dead_letter: DeadLetter) {
        if let Err(e) = self.tx.send(dead_letter).await {
            tracing::warn!(record = ?e.0.record.offset, "dead-letter writer stopped; record will be redelivered");
        }
    }
}
