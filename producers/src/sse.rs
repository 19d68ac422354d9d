//! A small Server-Sent Events parser (the WHATWG `text/event-stream`
//! format) for Mastodon's streaming API: bytes in, events out, across
//! arbitrary chunk boundaries.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// `event:` field; `message` when absent.
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed chunks, take complete events.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// Set after a `\r` ended a line, so a following `\n` is not a second
    /// (empty) line.
    after_cr: bool,
    /// Comment lines (`:thump` heartbeats) seen.
    pub comments: u64,
}

impl Parser {
    /// Consumes `chunk`, returning the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(ev) = self.line(&line) {
                        out.push(ev);
                    }
                }
                _ => self.buf.push(b),
            }
        }
        out
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            // Dispatch. An event without data is dropped (per the spec).
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` are not used: Mastodon's stream cannot resume.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_heartbeats_and_multiline_data() {
        let mut p = Parser::default();
        let got = p.feed(b":thump\n\nevent: update\ndata: {\"a\":1}\n\nevent: delete\ndata: 123\n\ndata: x\ndata: y\n\n");
        assert_eq!(
            got,
            [
                ev("update", "{\"a\":1}"),
                ev("delete", "123"),
                ev("message", "x\ny")
            ]
        );
        assert_eq!(p.comments, 1);
    }

    #[test]
    fn any_chunking_and_line_ending_gives_the_same_events() {
        let text = "event: update\r\ndata: {\"id\":\"1\"}\r\n\r\n:thump\r\nevent:update\rdata:{\"id\":\"2\"}\r\r";
        let want = [
            ev("update", "{\"id\":\"1\"}"),
            ev("update", "{\"id\":\"2\"}"),
        ];
        for size in 1..text.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for chunk in text.as_bytes().chunks(size) {
                got.extend(p.feed(chunk));
            }
            assert_eq!(got, want, "chunk size {size}");
        }
    }

    #[test]
    fn event_without_data_is_dropped() {
        let mut p = Parser::default();
        assert!(p.feed(b"event: update\n\n").is_empty());
        assert_eq!(p.feed(b"data: z\n\n"), [ev("message", "z")]);
    }
}
