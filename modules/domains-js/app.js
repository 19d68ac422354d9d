// Extracts the domains of the URLs a record mentions into a field.
//
// Reads URLs from the text fields (`http://` or `https://` up to
// whitespace) and from Twitter-style `entities.urls[].expanded_url`, and
// writes the distinct host names, lower-cased and without a leading
// `www.`, in order of first appearance, to `domains` (always an array).
// Records whose value is not a JSON object fail with the parser's message.
//
// Config:
//   fields  comma-separated top-level text fields (default `text`)
//   target  field to write (default `domains`)
import * as weir from '../../kits/javascript/weir-kit.js';

const URL_PATTERN = /https?:\/\/[^\s<>"'`]+/gi;
// Punctuation that ends a sentence rather than a URL.
const TRAILING = /[.,;:!?)\]}]+$/;

/** The host of `raw`, normalised; undefined when it is not a URL. */
export function domainOf(raw) {
  let url;
  try {
    url = new URL(raw.replace(TRAILING, ''));
  } catch {
    return undefined;
  }
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  return host.startsWith('www.') ? host.slice(4) : host || undefined;
}

export const processor = weir.module({
  name: 'domains',
  version: '0.1.0',
  init(config) {
    return { fields: config.list('fields', ['text']), target: config.get('target', 'domains') };
  },
  process(record, { fields, target }) {
    const doc = record.json();
    const seen = new Set();
    const add = (raw) => {
      const domain = typeof raw === 'string' ? domainOf(raw) : undefined;
      if (domain) seen.add(domain);
    };
    for (const field of fields) {
      const text = doc[field];
      if (typeof text === 'string') for (const match of text.matchAll(URL_PATTERN)) add(match[0]);
    }
    const urls = doc.entities?.urls;
    if (Array.isArray(urls)) for (const url of urls) add(url?.expanded_url);
    doc[target] = [...seen];
    return weir.emit(doc);
  },
});
