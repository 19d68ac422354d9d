// The JavaScript twin of modules/redact-py and modules/redact: replaces
// email addresses, phone numbers and configured keywords in text fields
// with `[EMAIL]`, `[PHONE]` and `[REDACTED]` and adds
// `redacted: {"emails": n, "phones": n, "keywords": n}`. Same config
// (`fields`, `keywords`, `emails`, `phones`) and output; the benchmark
// compares the three (benches/README.md). Keyword boundaries and `\d` are
// ASCII here (JavaScript's `\b`), Unicode-aware in Python and Rust.
import * as weir from '../../kits/javascript/weir-kit.js';

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const PHONE = /(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}/g;

const escape = (word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `text` with `pattern` replaced by `mask`, and how many matches. */
function replaceCounting(text, pattern, mask) {
  let n = 0;
  const out = text.replace(pattern, () => {
    n += 1;
    return mask;
  });
  return [out, n];
}

export const processor = weir.module({
  name: 'redact',
  version: '0.1.0',
  init(config) {
    const keywords = config.list('keywords');
    return {
      fields: config.list('fields', ['text']),
      keywords: keywords.length ? new RegExp(`\\b(?:${keywords.map(escape).join('|')})\\b`, 'gi') : undefined,
      emails: config.bool('emails', true),
      phones: config.bool('phones', true),
    };
  },
  process(record, settings) {
    const doc = record.json();
    const counts = { emails: 0, phones: 0, keywords: 0 };
    for (const field of settings.fields) {
      let text = doc[field];
      if (typeof text !== 'string') continue;
      let n;
      if (settings.emails) {
        [text, n] = replaceCounting(text, EMAIL, '[EMAIL]');
        counts.emails += n;
      }
      if (settings.phones) {
        [text, n] = replaceCounting(text, PHONE, '[PHONE]');
        counts.phones += n;
      }
      if (settings.keywords) {
        [text, n] = replaceCounting(text, settings.keywords, '[REDACTED]');
        counts.keywords += n;
      }
      doc[field] = text;
    }
    doc.redacted = counts;
    return weir.emit(doc);
  },
});
