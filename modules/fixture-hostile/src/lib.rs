//! Test fixture: a module written to escape its pipeline, as an attacker
//! would. Its `mode` setting picks the attack:
//!
//! - `escape`: every document goes to the index named by `index` (and the
//!   id named by `id`, if set), e.g. another tenant's;
//! - `fanout`: every record becomes `n` documents (with `trap_after`, the
//!   instance traps on its record after that many, so a batch is retried
//!   record by record, each in a fresh instance);
//! - `fail`: every record fails with a reason of `reason_bytes` bytes
//!   (default 4 MiB), which would become a Kafka header;
//! - `probe`: every record becomes a report of what the module could reach
//!   of the host: its environment, its files, a TCP connection to
//!   `connect` (`host:port`) and a name lookup. Each entry is `"denied: …"`
//!   with the error, or what was read.

use weir_guest::{Config, Document, Error, Outcome, Processor, Record};

/// The attack, read from the settings at `init`.
pub enum Hostile {
    Escape {
        index: String,
        id: Option<String>,
    },
    Fanout {
        n: usize,
        trap_after: Option<usize>,
        seen: usize,
    },
    Fail {
        reason: String,
    },
    Probe {
        connect: String,
    },
}

#[weir_guest::module(world = "0.1")]
impl Processor for Hostile {
    fn init(config: &Config) -> Result<Self, Error> {
        match config.get_or("mode", "escape") {
            "escape" => Ok(Hostile::Escape {
                index: config.get_or("index", "other-tenant-index").to_string(),
                id: config.get("id").map(str::to_string),
            }),
            "fanout" => Ok(Hostile::Fanout {
                n: config.parse_or("n", 1000)?,
                trap_after: config
                    .get("trap_after")
                    .map(|v| {
                        v.parse()
                            .map_err(|e| Error::new(format!("trap_after: {e}")))
                    })
                    .transpose()?,
                seen: 0,
            }),
            "fail" => Ok(Hostile::Fail {
                reason: "x".repeat(config.parse_or("reason_bytes", 4 << 20)?),
            }),
            "probe" => Ok(Hostile::Probe {
                connect: config.get_or("connect", "127.0.0.1:9").to_string(),
            }),
            other => Err(Error::new(format!("unknown mode {other:?}"))),
        }
    }

    fn process(&mut self, record: Record) -> Outcome {
        match self {
            Hostile::Escape { index, id } => {
                let mut doc = Document::from_bytes(record.value).with_index(index.clone());
                if let Some(id) = id {
                    doc = doc.with_id(id.clone());
                }
                Outcome::emit_one(doc)
            }
            Hostile::Fanout {
                n,
                trap_after,
                seen,
            } => {
                *seen += 1;
                if trap_after.is_some_and(|after| *seen > after) {
                    panic!("trapping on record {seen} of this instance");
                }
                Outcome::Emit(
                    (0..*n)
                        .map(|i| Document::from_bytes(format!("{{\"n\":{i}}}")))
                        .collect(),
                )
            }
            Hostile::Fail { reason } => Outcome::fail(reason.clone()),
            Hostile::Probe { connect } => Outcome::emit_one(Document::from_bytes(probe(connect))),
        }
    }
}

/// What the module can reach of the host, as a JSON object.
fn probe(connect: &str) -> String {
    use std::net::ToSocketAddrs;
    fn seen<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> String {
        match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("denied: {e}"),
        }
    }
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let report = [
        ("env", format!("{env:?}")),
        ("path_var", seen(std::env::var("PATH"))),
        ("root_dir", seen(std::fs::read_dir("/").map(|d| d.count()))),
        ("cwd_dir", seen(std::fs::read_dir(".").map(|d| d.count()))),
        (
            "passwd",
            seen(std::fs::read("/etc/passwd").map(|b| b.len())),
        ),
        (
            "tcp",
            seen(
                connect
                    .parse::<std::net::SocketAddr>()
                    .map_err(|e| e.to_string())
                    .and_then(|a| {
                        std::net::TcpStream::connect(a)
                            .map(|_| "connected")
                            .map_err(|e| e.to_string())
                    }),
            ),
        ),
        (
            "lookup",
            seen(("localhost", 80).to_socket_addrs().map(|a| a.count())),
        ),
    ];
    let fields: Vec<String> = report.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn escape_sends_every_document_to_the_chosen_index_and_id() {
        let mut m = Hostile::init(&config(&[("index", "victim-x"), ("id", "1")])).unwrap();
        let out = m.process(Record::from_value(r#"{"a":1}"#));
        assert_eq!(
            out,
            Outcome::emit_one(
                Document::from_bytes(r#"{"a":1}"#)
                    .with_index("victim-x")
                    .with_id("1")
            )
        );
    }

    #[test]
    fn fanout_makes_n_documents() {
        let mut m = Hostile::init(&config(&[("mode", "fanout"), ("n", "7")])).unwrap();
        match m.process(Record::from_value("{}")) {
            Outcome::Emit(docs) => assert_eq!(docs.len(), 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fail_fails_with_a_reason_of_the_chosen_size() {
        let mut m = Hostile::init(&config(&[("mode", "fail"), ("reason_bytes", "9")])).unwrap();
        assert_eq!(
            m.process(Record::from_value("{}")),
            Outcome::fail("x".repeat(9))
        );
    }
}
