#!/usr/bin/env python3
"""Attributes a `perf record --call-graph dwarf` profile of the weir host to
components (see PROFILE.md).

    perf script -i perf-wasm-3-*.data -F comm,tid,period,ip,sym,dso > wasm3.script
    python3 benches/perf-components.py wasm3.script [--other 30]

Each sample's stack is walked from the leaf towards the root; the first
frame that matches a rule names the component (so `malloc` or `memmove`
count for whoever called them, and a syscall for the code that made it).
Samples whose leaf is in JIT code (an address without a symbol in an
anonymous executable mapping or a perf map) are the modules' own code.
"""

import re
import sys
from collections import Counter

# (component, regex on "symbol (dso)"), checked in order for each frame.
RULES = [
    ("guest Wasm code (JIT)", r"^\[unknown\] \((/tmp/perf-\d+\.map|\[JIT\].*|//anon)\)"),
    ("gzip (miniz_oxide)", r"miniz_oxide|flate2|crc32fast"),
    ("bulk encode (NDJSON)", r"encoder::encode_index|request_builder::RequestBuilder::encode|encoder::put_"),
    ("ES response parse", r"sinks::elasticsearch::response"),
    ("HTTP client (elasticsearch/reqwest/hyper)", r"reqwest::|hyper::|hyper_util::|h2::|elasticsearch::http|elasticsearch::Elasticsearch"),
    ("sink settle/metrics", r"sinks::elasticsearch::service|sinks::elasticsearch::metrics|sinks::elasticsearch::task"),
    ("rdkafka (fetch, decode, queue)", r"\brd_kafka|\brd_[a-z]|rdkafka::|librdkafka|lz4|zstd|snappy"),
    ("chain: to_wit copies", r"chain::to_wit"),
    ("chain: from_wit / items", r"chain::from_wit|chain::run_chain"),
    ("host JSON validation", r"validate_document|IgnoredAny|serde_json::de::|serde_json::read::"),
    ("canonical ABI lift/lower (copies in/out of guest)", r"typed::Lower|typed::Lift|lower_args|LowerContext|LiftContext|linear_lift|linear_lower|ComponentType|func::typed::|Instance::options_memory|LowerContext<.*>::realloc|cabi_realloc"),
    ("instantiate + init (per batch)", r"instantiate|InstancePre|ModulePre|Store<.*>::new|StoreOpaque::new|InstanceAllocator|PoolingInstanceAllocator|OnDemandInstanceAllocator|vm::instance::Instance::new|call_init|ModuleCtx::new|WasiCtx|ResourceTable"),
    ("store/instance teardown", r"drop_in_place<wasmtime::runtime::store|StoreOpaque as core::ops::drop|deallocate|Instance::drop|Mmap::drop|decommit"),
    ("wasm call machinery (wasmtime)", r"wasmtime::|wasmtime_|cranelift|traphandlers|fiber"),
    ("source loop (on_message, batching)", r"source::kafka::KafkaSource|source::kafka::offsets|SourceRecord"),
    ("dispatch to sink (per-doc send, acks)", r"dispatch_outputs|SinkHandle|event::Ack|default_doc_id"),
    ("partition worker", r"worker::run_partition"),
    ("metrics (prometheus-client)", r"prometheus_client|telemetry::"),
    ("tokio runtime", r"tokio::"),
]
# Checked first, against every frame of the stack: work done for a module's
# outbound HTTP (the wasi:http host functions and streams the guest calls,
# the policy hooks, and the pooled client's hyper code when its stack shows
# the connection type `runtime::http::client::Stream`). Without this the
# leaf rules above would file its hyper frames under the sink's HTTP client
# and its host functions under wasm call machinery.
ANYWHERE = [
    ("module HTTP (wasi:http host side, policy hooks, pooled client)",
     r"weir::runtime::http::|wasmtime_wasi_http|wasmtime_wasi_io::"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in RULES]
COMPILED_ANYWHERE = [(name, re.compile(rx)) for name, rx in ANYWHERE]
FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*)$")


def classify(frames):
    for name, rx in COMPILED_ANYWHERE:
        if any(rx.search(f) for f in frames):
            return name
    for f in frames:
        for name, rx in COMPILED:
            if rx.search(f):
                return name
    return "other: " + (frames[0] if frames else "?")


def main():
    path = sys.argv[1]
    show_other = int(sys.argv[sys.argv.index("--other") + 1]) if "--other" in sys.argv else 12
    totals, by_thread, others = Counter(), Counter(), Counter()
    n = 0
    comm, frames = None, []

    def flush():
        nonlocal n
        if comm is None:
            return
        c = classify(frames)
        totals[c] += 1
        by_thread[comm] += 1
        n += 1
        if c.startswith("other"):
            others[frames[0] if frames else "?"] += 1

    with open(path, errors="replace") as fh:
        for line in fh:
            if not line.strip():
                flush()
                comm, frames = None, []
                continue
            if not line.startswith((" ", "\t")):
                comm = line.split()[0]
                continue
            m = FRAME.match(line)
            if m:
                frames.append(m.group(2).strip())
    flush()
    print(f"{n} samples")
    grouped = Counter()
    for k, v in totals.items():
        grouped["other" if k.startswith("other") else k] += v
    for k, v in grouped.most_common():
        print(f"{100.0 * v / n:6.1f}%  {k}")
    print("\nby thread:")
    for k, v in by_thread.most_common():
        print(f"{100.0 * v / n:6.1f}%  {k}")
    print(f"\ntop unclassified leaves:")
    for k, v in others.most_common(show_other):
        print(f"{100.0 * v / n:6.1f}%  {k}")


if __name__ == "__main__":
    main()
