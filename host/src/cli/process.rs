//! `weir process`: the module author's loop. Runs a chain over JSON lines
//! from stdin with no Kafka and no Elasticsearch.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;

use weir::config::RuntimeConfig;
use weir::event::{SourceRecord, default_doc_id};
use weir::pipeline::{Chain, run_chain};
use weir::runtime::{HttpPolicy, WasmRuntime};
use weir::telemetry::PipelineMetrics;

#[derive(clap::Args)]
pub struct ProcessArgs {
    /// A module to run, in order (repeat for a chain).
    #[arg(short, long = "module", required = true)]
    modules: Vec<PathBuf>,
    /// A setting `key=value` for every module, or `MODULE:key=value` for
    /// one (MODULE is the file stem).
    #[arg(long = "config")]
    config: Vec<String>,
    /// Records per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Print `{"_index", "_id", "doc"}` instead of the bare document.
    #[arg(long)]
    envelope: bool,
    /// Topic name records appear to come from.
    #[arg(long, default_value = "stdin")]
    topic: String,
    /// Let modules send HTTP to `scheme://host[:port]` (repeat; `*.` for
    /// subdomains), as `allowed_outbound_hosts` does. Default: none.
    #[arg(long = "allow-http", value_name = "PATTERN")]
    allow_http: Vec<String>,
}

fn settings_for(module: &str, config: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for c in config {
        let (scope, kv) = match c.split_once(':') {
            Some((scope, kv)) if !scope.contains('=') => (Some(scope), kv),
            _ => (None, c.as_str()),
        };
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--config {c}: expected key=value or MODULE:key=value"))?;
        if scope.is_none_or(|s| s == module) {
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

pub async fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(WasmRuntime::new(&RuntimeConfig::default())?);
    let http = HttpPolicy::builder("process")
        .allow(args.allow_http.iter().cloned())
        .build()
        .map_err(|e| anyhow::anyhow!("--allow-http: {}", e.error))?;
    let mut modules = Vec::new();
    for path in &args.modules {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module".into());
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let settings = settings_for(&name, &args.config)?;
        modules.push(Arc::new(
            runtime
                .load("process", &name, bytes, settings, Arc::clone(&http))
                .await?,
        ));
    }
    let chain = Chain::new(modules, None);
    let metrics = PipelineMetrics::detached("process");
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut total, mut emitted, mut failed) = (0usize, 0usize, 0usize);
    // Raw lines, not `lines()`: one line that is not UTF-8 fails alone
    // (reported with its line number) instead of ending the run.
    let mut lines = stdin.split(b'\n').enumerate();
    loop {
        let mut batch = Vec::with_capacity(args.batch);
        // The input line number (1-based) of each record in `batch`.
        let mut line_numbers = Vec::with_capacity(args.batch);
        for (index, line) in lines.by_ref() {
            let line_number = index + 1;
            let mut line = line.context("reading stdin")?;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            match std::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(_) => {}
                Err(e) => {
                    total += 1;
                    failed += 1;
                    eprintln!(
                        "line {line_number}: not valid UTF-8 (invalid byte at column {}); skipped",
                        e.valid_up_to() + 1
                    );
                    continue;
                }
            }
            batch.push(Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: total as i64,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: Bytes::from(line),
            }));
            line_numbers.push(line_number);
            total += 1;
            if batch.len() == args.batch.max(1) {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        let out = run_chain(&runtime, &chain, &batch, &metrics).await;
        for f in &out.failures {
            failed += 1;
            let stage = f.module.as_deref().unwrap_or("validation");
            eprintln!(
                "line {}: record {}: {stage}: {}",
                line_numbers[f.source], batch[f.source].offset, f.reason
            );
        }
        for doc in out.docs {
            emitted += 1;
            if args.envelope {
                let r = &batch[doc.source];
                let id = doc
                    .id
                    .unwrap_or_else(|| default_doc_id(&r.topic, r.partition, r.offset, doc.n));
                let body: serde_json::Value = serde_json::from_slice(&doc.body)?;
                let env = serde_json::json!({"_index": doc.index, "_id": id, "doc": body});
                serde_json::to_writer(&mut stdout, &env)?;
            } else {
                stdout.write_all(&doc.body)?;
            }
            stdout.write_all(b"\n")?;
        }
    }
    stdout.flush()?;
    eprintln!("{total} records in, {emitted} documents out, {failed} failed");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::settings_for;

    #[test]
    fn scoped_and_global_settings() {
        let c = vec![
            "fields=text".to_string(),
            "text-clean:suffix=_raw".to_string(),
            "other:x=1".to_string(),
        ];
        assert_eq!(
            settings_for("text-clean", &c).unwrap(),
            vec![
                ("fields".into(), "text".into()),
                ("suffix".into(), "_raw".into())
            ]
        );
        assert!(settings_for("m", &["novalue".to_string()]).is_err());
    }
}
