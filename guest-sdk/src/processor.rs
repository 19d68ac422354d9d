//! The stateful module interface.

use crate::{Config, Error, Outcome, Record};

/// A module that keeps state between the records of a batch.
///
/// Annotate the impl with [`#[weir_guest::module]`](crate::module) to export
/// it. The host creates a fresh instance per batch: `init` runs once, then
/// `process_batch` with the whole batch. Nothing survives to the next batch.
///
/// ```
/// use weir_guest::{Config, Error, Outcome, Processor, Record};
///
/// struct Tagger {
///     tag: String,
/// }
///
/// #[weir_guest::module]
/// impl Processor for Tagger {
///     fn init(config: &Config) -> Result<Self, Error> {
///         Ok(Self { tag: config.require("tag")?.to_owned() })
///     }
///
///     fn process(&mut self, record: Record) -> Outcome {
///         match record.json() {
///             Ok(mut doc) => {
///                 doc.set("tag", self.tag.as_str());
///                 Outcome::emit_one(doc.into_document())
///             }
///             Err(e) => e.into(),
///         }
///     }
/// }
///
/// let mut tagger = Tagger::init(&Config::from_pairs([("tag", "x")])).unwrap();
/// let outcome = tagger.process(Record::from_value("{}"));
/// assert!(matches!(outcome, Outcome::Emit(docs) if docs[0].body == br#"{"tag":"x"}"#));
/// ```
pub trait Processor: Sized {
    /// Builds the state from the module's settings. An error rejects the
    /// module (the pipeline does not start, or a hot reload is refused).
    fn init(config: &Config) -> Result<Self, Error>;

    /// Processes one record.
    fn process(&mut self, record: Record) -> Outcome;

    /// Processes a batch; must return exactly one outcome per record, in
    /// order. Defaults to calling [`process`](Self::process) for each.
    ///
    /// If an override returns the wrong number of outcomes, the SDK fails
    /// every record of the batch with a reason saying so.
    fn process_batch(&mut self, batch: Vec<Record>) -> Vec<Outcome> {
        batch
            .into_iter()
            .map(|record| self.process(record))
            .collect()
    }
}
