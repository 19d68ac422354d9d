//! Runs a batch of records through a pipeline's chain of modules.
//!
//! Each module sees the previous module's output documents as records (same
//! topic/partition/offset/key/headers, value = the document body). A module
//! that traps on a batch is retried record by record in fresh instances, so
//! one poison record fails alone and the rest of the batch goes on.

use std::sync::Arc;

use super::provenance::{Chain, splice_member};
use crate::event::{MAX_HEADER_BYTES, SourceRecord, cap};
use crate::runtime::{BatchRecord, Body, Emitted, LoadedModule, ModuleOutcome, WasmRuntime};
use crate::telemetry::PipelineMetrics;

/// A document that came out of the chain, ready to be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDoc {
    /// Position of the source record in the batch.
    pub source: usize,
    /// Position among the source record's outputs (for the default id).
    pub n: usize,
    pub body: Vec<u8>,
    pub index: Option<String>,
    pub id: Option<String>,
}

/// A source record that could not be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub source: usize,
    /// The module that failed it; `None` when the host's output validation did.
    pub module: Option<String>,
    pub reason: String,
}

/// Everything a batch turned into.
#[derive(Debug, Default)]
pub struct ChainOutput {
    pub docs: Vec<OutputDoc>,
    pub failures: Vec<Failure>,
    /// Records a module failed on by hitting a resource limit (CPU,
    /// memory, instances), or left unrun after repeated limit hits.
    pub limit_failures: usize,
}

/// A document in flight between modules: bytes, or (between 0.2
/// modules) a document the host holds parsed.
struct Item {
    source: usize,
    body: Body,
    index: Option<String>,
    id: Option<String>,
}

/// Runs `records` through `modules` in order.
pub async fn run_chain(
    rt: &WasmRuntime,
    chain: &Chain,
    records: &[Arc<SourceRecord>],
    metrics: &PipelineMetrics,
) -> ChainOutput {
    let modules = &chain.modules;
    let mut items: Vec<Item> = records
        .iter()
        .enumerate()
        .map(|(source, r)| Item {
            source,
            body: Body::Bytes(r.value.clone()),
            index: None,
            id: None,
        })
        .collect();
    let mut failed = vec![false; records.len()];
    let mut out = ChainOutput::default();

    for module in modules {
        if items.is_empty() {
            break;
        }
        // Each body in the module's world: parsed once before the first 0.2
        // module, written out only before a 0.1 module.
        let world = module.world();
        for item in &mut items {
            let body = std::mem::replace(&mut item.body, Body::Bytes(Default::default()));
            item.body = body.for_world(world);
        }
        let batch: Vec<BatchRecord<'_>> = items
            .iter()
            .map(|it| BatchRecord {
                source: &records[it.source],
                body: &it.body,
            })
            .collect();
        let budget = chain.max_batch_output_bytes;
        let outcomes = run_isolating(rt, module, &batch, &mut out.limit_failures, budget).await;
        drop(batch);
        let m = metrics.module(&module.name);
        m.records_in.inc_by(items.len() as u64);
        let mut next = Vec::with_capacity(items.len());
        // Bytes of the documents in `next`, against the batch's budget.
        let mut held = 0usize;
        for (item, outcome) in items.into_iter().zip(outcomes) {
            match outcome {
                ModuleOutcome::Emit(docs) => {
                    m.records_out.inc_by(docs.len() as u64);
                    // One module's fan-out is refused here already, before
                    // its documents count against the batch's bytes.
                    if let Some(limit) = chain.max_documents_per_record
                        && docs.len() > limit
                    {
                        let n = docs.len();
                        refuse(
                            &mut failed,
                            &mut out.failures,
                            metrics,
                            item.source,
                            "max_documents_per_record",
                            || too_many_documents(n, limit),
                        );
                        continue;
                    }
                    let bytes: usize = docs.iter().map(|d| d.body.len()).sum();
                    if let Some(limit) = budget
                        && held + bytes > limit
                    {
                        refuse(
                            &mut failed,
                            &mut out.failures,
                            metrics,
                            item.source,
                            "max_batch_output_bytes",
                            || {
                                format!(
                                    "after module {} the batch's documents would be {} bytes, over the limit of {limit} (max_batch_output_bytes)",
                                    module.name,
                                    held + bytes
                                )
                            },
                        );
                        continue;
                    }
                    held += bytes;
                    next.extend(docs.into_iter().map(|d| from_wit(&item, d)));
                }
                ModuleOutcome::Drop => {
                    m.records_dropped.inc();
                }
                ModuleOutcome::Fail(reason) => {
                    m.records_failed.inc();
                    if !std::mem::replace(&mut failed[item.source], true) {
                        out.failures.push(Failure {
                            source: item.source,
                            module: Some(module.name.clone()),
                            reason,
                        });
                    }
                }
            }
        }
        items = next;
    }

    // Documents each record became, for the per-record limit.
    let mut made = vec![0usize; records.len()];
    for item in &items {
        made[item.source] += 1;
    }
    if let Some(limit) = chain.max_documents_per_record {
        for (source, &n) in made.iter().enumerate() {
            if n > limit {
                refuse(
                    &mut failed,
                    &mut out.failures,
                    metrics,
                    source,
                    "max_documents_per_record",
                    || too_many_documents(n, limit),
                );
            }
        }
        items.retain(|item| made[item.source] <= limit);
    }
    // Position of each output among its record's (for the default id).
    let mut per_source = vec![0usize; records.len()];
    for item in items {
        // A held document is one JSON object by construction; bytes are
        // checked.
        let held = matches!(item.body, Body::Doc(_));
        let mut body = item.body.into_bytes();
        // The output check: (the check's metric label, the reason).
        let mut checked = if held {
            Ok(())
        } else {
            validate_document(&body).map_err(|reason| ("document", reason))
        };
        if checked.is_ok()
            && let (Some(index), Some(scope)) = (&item.index, &chain.index_scope)
            && !scope.allows(index)
        {
            checked = Err((
                "index",
                format!(
                    "a module sent a document to index `{index}`, which this pipeline may not write (it may write {scope})"
                ),
            ));
        }
        if checked.is_ok() {
            // Counted with everything the host adds.
            if let Some(fragment) = chain.provenance() {
                splice_member(&mut body, fragment);
            }
            if let Some(limit) = chain.max_document_bytes
                && body.len() > limit
            {
                checked = Err((
                    "max_document_bytes",
                    format!(
                        "document is {} bytes, over the limit of {limit} (max_document_bytes)",
                        body.len()
                    ),
                ));
            }
        }
        if let Err((check, reason)) = checked {
            refuse(
                &mut failed,
                &mut out.failures,
                metrics,
                item.source,
                check,
                || reason,
            );
            continue;
        }
        let n = per_source[item.source];
        per_source[item.source] += 1;
        out.docs.push(OutputDoc {
            source: item.source,
            n,
            body,
            index: item.index,
            id: item.id,
        });
    }
    out
}

/// Fails record `source` on the host's output `check` (once per record:
/// its first failure is the one dead-lettered), counting it.
fn refuse(
    failed: &mut [bool],
    failures: &mut Vec<Failure>,
    metrics: &PipelineMetrics,
    source: usize,
    check: &str,
    reason: impl FnOnce() -> String,
) {
    if !std::mem::replace(&mut failed[source], true) {
        metrics.output_rejected(check);
        failures.push(Failure {
            source,
            module: None,
            reason: reason(),
        });
    }
}

fn too_many_documents(n: usize, limit: usize) -> String {
    format!("the record became {n} documents, over the limit of {limit} (max_documents_per_record)")
}

/// Records run alone after which a module that keeps hitting a limit is
/// not run on the rest of the batch.
const ISOLATION_LIMIT_STREAK: usize = 3;

/// Runs the batch; if the module traps, runs each record alone so only the
/// records that trap by themselves fail (with the trap message). Counts
/// the records failed by a resource limit into `limited`. Run record by
/// record, each call's output is bounded by the module's memory but their
/// sum is not: once the documents returned pass `budget` bytes, the rest
/// of the records fail unrun.
async fn run_isolating(
    rt: &WasmRuntime,
    module: &LoadedModule,
    batch: &[BatchRecord<'_>],
    limited: &mut usize,
    budget: Option<usize>,
) -> Vec<ModuleOutcome> {
    match module.run(rt, batch).await {
        Ok(outcomes) => outcomes.into_iter().map(bounded).collect(),
        Err(trap) if batch.len() == 1 => {
            *limited += usize::from(trap.limit.is_some());
            vec![ModuleOutcome::Fail(format!(
                "module {} trapped: {trap}",
                module.name
            ))]
        }
        Err(trap) => {
            tracing::warn!(module = %module.name, error = %trap, records = batch.len(), "module trapped on a batch; isolating records");
            let mut outcomes = Vec::with_capacity(batch.len());
            // A module that hits a resource limit on the batch and then on
            // every record alone would cost a full limit per record (a
            // looping module: max_batch_time × batch size). After a few in
            // a row the rest fail with the same reason, unrun.
            let mut limited_in_a_row = 0;
            let mut returned = 0usize;
            for record in batch {
                if let Some(limit) = budget
                    && returned > limit
                {
                    outcomes.push(ModuleOutcome::Fail(format!(
                        "module {} not run on this record: run record by record, it returned {returned} bytes of documents, over the limit of {limit} (max_batch_output_bytes)",
                        module.name
                    )));
                    continue;
                }
                if limited_in_a_row >= ISOLATION_LIMIT_STREAK {
                    *limited += 1;
                    outcomes.push(ModuleOutcome::Fail(format!(
                        "module {} not run on this record: it exceeded a limit on the batch and on {ISOLATION_LIMIT_STREAK} records alone in a row ({trap})",
                        module.name
                    )));
                    continue;
                }
                let one = std::slice::from_ref(record);
                outcomes.push(match module.run(rt, one).await {
                    Ok(mut o) => {
                        limited_in_a_row = 0;
                        let outcome = bounded(o.pop().expect("run_batch checks the outcome count"));
                        if let ModuleOutcome::Emit(docs) = &outcome {
                            returned += docs.iter().map(|d| d.body.len()).sum::<usize>();
                        }
                        outcome
                    }
                    Err(trap) => {
                        if trap.limit.is_some() {
                            *limited += 1;
                            limited_in_a_row += 1;
                        } else {
                            limited_in_a_row = 0;
                        }
                        ModuleOutcome::Fail(format!("module {} trapped: {trap}", module.name))
                    }
                });
            }
            outcomes
        }
    }
}

/// The outcome with a failure reason cut to what a dead letter carries, as
/// soon as the host has it: a module failing every record with megabytes
/// of reason holds no more than that per record in the host.
fn bounded(outcome: ModuleOutcome) -> ModuleOutcome {
    match outcome {
        ModuleOutcome::Fail(reason) if reason.len() > MAX_HEADER_BYTES => {
            ModuleOutcome::Fail(cap(&reason, MAX_HEADER_BYTES).into_owned())
        }
        other => other,
    }
}

fn from_wit(parent: &Item, d: Emitted) -> Item {
    Item {
        source: parent.source,
        body: d.body,
        index: d.index.or_else(|| parent.index.clone()),
        id: d.id.or_else(|| parent.id.clone()),
    }
}

/// A document must be one JSON object: Elasticsearch accepts nothing else,
/// and the bulk format cannot carry a raw newline.
pub fn validate_document(body: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => Err(format!(
            "invalid JSON at byte {}: {e}",
            json_error_offset(body, &e)
        )),
        Ok(_) => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err("document is not a JSON object".into());
            }
            Ok(())
        }
    }
}

/// Converts serde_json's line/column into a byte offset into `body`.
pub fn json_error_offset(body: &[u8], e: &serde_json::Error) -> usize {
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in body.iter().enumerate() {
        if line == e.line() {
            break;
        }
        if *b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    (line_start + e.column().saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_json_with_byte_offset() {
        let err = validate_document(b"{\"a\": nope}").unwrap_err();
        // serde_json stops at the first byte that cannot continue `n...`.
        assert!(
            err.starts_with("invalid JSON at byte 7: expected ident"),
            "{err}"
        );
    }

    #[test]
    fn rejects_non_objects_and_accepts_objects() {
        assert_eq!(
            validate_document(b"[1,2]").unwrap_err(),
            "document is not a JSON object"
        );
        assert!(validate_document(b" {\"a\":1}").is_ok());
    }

    #[test]
    fn offset_counts_previous_lines() {
        let body = b"{\n\"a\": x}";
        let e = serde_json::from_slice::<serde::de::IgnoredAny>(body).unwrap_err();
        assert_eq!(json_error_offset(body, &e), 7);
    }
}
