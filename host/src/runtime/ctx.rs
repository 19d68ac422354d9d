//! Per-instance host state (`ModuleCtx`) and the host side of the imports a
//! module may use.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::bindings::v02::types::{self as doc_types, Doc};
use super::bindings::wasi::logging::logging;
use super::doc::HeldDoc;
use super::http::{HttpPolicy, ModuleHttp};
use super::limits::{InstanceLimits, LimitExceeded};
use super::log::LogContext;
use super::rate::LogAdmission;

/// Everything one module instance owns while it processes one batch.
///
/// A fresh `ModuleCtx` (and Store) is created for every batch, so nothing a
/// module does can leak into the next batch.
pub struct ModuleCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    stderr: StderrTail,
    /// Who is logging: pipeline and module names, for attribution.
    log_context: Arc<LogContext>,
    /// Epoch ticks the current call may still run before it is interrupted.
    pub(crate) ticks_left: u64,
    max_memory_bytes: usize,
    max_instances: usize,
    /// `wasi:http` state; every request goes through the pipeline's policy.
    http: ModuleHttp,
    /// Bytes the module may still write into host-held documents (0.2).
    doc_bytes_left: usize,
    /// Largest a held document may grow; `None`: no limit.
    max_document_bytes: Option<usize>,
}

/// The table entry behind a `doc` handle: the generated `Doc` type only
/// names the resource; the table holds the [`HeldDoc`].
fn held(doc: &Resource<Doc>) -> Resource<HeldDoc> {
    if doc.owned() {
        Resource::new_own(doc.rep())
    } else {
        Resource::new_borrow(doc.rep())
    }
}

/// Host bytes one held document costs besides its JSON (table slot, tree).
const DOC_OVERHEAD: usize = 128;

impl ModuleCtx {
    pub fn new(
        limits: &InstanceLimits,
        log_context: Arc<LogContext>,
        http: Arc<HttpPolicy>,
    ) -> Self {
        let stderr = StderrTail::new(4096);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_bytes)
                .table_elements(limits.max_table_elements)
                .instances(limits.max_instances)
                .tables(limits.max_tables)
                .memories(limits.max_memories)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            http: ModuleHttp::new(http, Arc::clone(&log_context)),
            log_context,
            ticks_left: limits.cpu_ticks_per_call,
            max_memory_bytes: limits.max_memory_bytes,
            max_instances: limits.max_instances,
            doc_bytes_left: limits.max_memory_bytes,
            max_document_bytes: limits.max_document_bytes,
        }
    }

    /// Puts a document into this instance's table (the host's own, not
    /// charged to the module).
    pub(crate) fn hold(&mut self, doc: HeldDoc) -> wasmtime::Result<Resource<Doc>> {
        Ok(Resource::new_own(self.table.push(doc)?.rep()))
    }

    /// Takes a document a module handed back out of the table.
    pub(crate) fn take(&mut self, doc: Resource<Doc>) -> wasmtime::Result<HeldDoc> {
        Ok(self.table.delete(held(&doc))?)
    }

    fn doc(&self, doc: &Resource<Doc>) -> wasmtime::Result<&HeldDoc> {
        Ok(self.table.get(&held(doc))?)
    }

    fn doc_mut(&mut self, doc: &Resource<Doc>) -> wasmtime::Result<&mut HeldDoc> {
        Ok(self.table.get_mut(&held(doc))?)
    }

    /// Charges `bytes` of held-document writes to the module, or stops it:
    /// documents live outside its Store's memory, so its memory limit
    /// bounds them here.
    fn charge(&mut self, bytes: usize) -> wasmtime::Result<()> {
        match self.doc_bytes_left.checked_sub(bytes) {
            Some(left) => {
                self.doc_bytes_left = left;
                Ok(())
            }
            None => Err(wasmtime::Error::new(LimitExceeded::DocumentMemory(
                self.max_memory_bytes,
            ))),
        }
    }

    /// The memory limit this instance runs under, in bytes.
    pub fn limits_memory(&self) -> usize {
        self.max_memory_bytes
    }

    /// The instance-count limit this instance runs under.
    pub fn limits_instances(&self) -> usize {
        self.max_instances
    }

    /// The last bytes the module wrote to stderr (e.g. its panic message).
    pub fn stderr_tail(&self) -> String {
        self.stderr.contents()
    }
}

impl WasiView for ModuleCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ModuleCtx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

impl logging::Host for ModuleCtx {
    async fn log(&mut self, level: logging::Level, context: String, message: String) {
        let c = &self.log_context;
        let tenant = c.tenant.as_deref().unwrap_or("");
        if let Some(limiter) = &c.limiter {
            match limiter.admit() {
                LogAdmission::Drop => return,
                LogAdmission::Allow { suppressed_before } if suppressed_before > 0 => {
                    tracing::warn!(tenant, pipeline = %c.pipeline, module = %c.module, suppressed = suppressed_before, "module log lines suppressed (over its log rate limit)");
                }
                LogAdmission::Allow { .. } => {}
            }
        }
        match level {
            logging::Level::Trace => {
                tracing::trace!(tenant, pipeline = %c.pipeline, module = %c.module, context, "{message}")
            }
            logging::Level::Debug => {
                tracing::debug!(tenant, pipeline = %c.pipeline, module = %c.module, context, "{message}")
            }
            logging::Level::Info => {
                tracing::info!(tenant, pipeline = %c.pipeline, module = %c.module, context, "{message}")
            }
            logging::Level::Warn => {
                tracing::warn!(tenant, pipeline = %c.pipeline, module = %c.module, context, "{message}")
            }
            logging::Level::Error | logging::Level::Critical => {
                tracing::error!(tenant, pipeline = %c.pipeline, module = %c.module, context, "{message}")
            }
        }
    }
}

impl doc_types::Host for ModuleCtx {}

impl doc_types::HostDoc for ModuleCtx {
    fn new(&mut self) -> wasmtime::Result<Resource<Doc>> {
        self.charge(DOC_OVERHEAD)?;
        self.hold(HeldDoc::empty())
    }

    fn get(
        &mut self,
        doc: Resource<Doc>,
        path: Vec<String>,
    ) -> wasmtime::Result<Option<doc_types::Value>> {
        Ok(self.doc(&doc)?.get(&path))
    }

    fn set(
        &mut self,
        doc: Resource<Doc>,
        path: Vec<String>,
        value: doc_types::Value,
    ) -> wasmtime::Result<Result<(), doc_types::DocError>> {
        let max_document_bytes = self.max_document_bytes;
        let held = self.doc_mut(&doc)?;
        let charged = match held.set(&path, value) {
            Ok(charged) => charged,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(limit) = max_document_bytes
            && held.len() > limit
        {
            return Err(wasmtime::Error::new(LimitExceeded::DocumentSize(limit)));
        }
        self.charge(charged)?;
        Ok(Ok(()))
    }

    fn remove(
        &mut self,
        doc: Resource<Doc>,
        path: Vec<String>,
    ) -> wasmtime::Result<Result<bool, doc_types::DocError>> {
        Ok(self.doc_mut(&doc)?.remove(&path))
    }

    fn keys(
        &mut self,
        doc: Resource<Doc>,
        path: Vec<String>,
    ) -> wasmtime::Result<Option<Vec<String>>> {
        Ok(self.doc(&doc)?.keys(&path))
    }

    fn to_json(&mut self, doc: Resource<Doc>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.doc(&doc)?.to_json())
    }

    fn clone(&mut self, doc: Resource<Doc>) -> wasmtime::Result<Resource<Doc>> {
        let copy = self.doc(&doc)?.clone();
        self.charge(copy.len() + DOC_OVERHEAD)?;
        self.hold(copy)
    }

    fn drop(&mut self, doc: Resource<Doc>) -> wasmtime::Result<()> {
        self.table.delete(held(&doc))?;
        Ok(())
    }
}

/// A stderr that keeps only the last `capacity` bytes and never refuses a
/// write (a guest's `eprintln!` panics if stderr fails, which would turn a
/// chatty module into a trapping one).
#[derive(Clone)]
pub struct StderrTail {
    capacity: usize,
    buf: Arc<Mutex<Vec<u8>>>,
}

impl StderrTail {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            buf: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() > self.capacity {
            let excess = buf.len() - self.capacity;
            buf.drain(..excess);
        }
    }

    pub fn contents(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).trim().to_string()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_bytes() {
        let t = StderrTail::new(8);
        t.push(b"hello ");
        t.push(b"world!");
        assert_eq!(t.contents(), "o world!");
    }
}
