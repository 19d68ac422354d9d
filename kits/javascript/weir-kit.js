// Weir module kit for JavaScript (componentize-js).
//
//   import * as weir from './weir-kit.js';
//
//   export const processor = weir.module({
//     name: 'add-source',
//     version: '0.1.0',
//     process(record, config) {
//       const doc = record.json();              // an object; invalid JSON fails the record
//       doc[config.get('key', 'source')] = record.topic;
//       return weir.emit(doc);
//     },
//   });
//
// `export const processor` is the component's export (the WIT world's
// `processor` interface). The kit turns every exception in `process` into a
// fail outcome for its record (an exception escaping an export without an
// error result would trap the instance) and an exception in `init` into
// init's error, which rejects the module with that message.
//
// Natively (node --test) the same file runs unchanged when node is started
// with `--import <kit>/native.js`, which stands in for the host's
// wasi:logging import (log lines go to stderr).

import { log as hostLog } from 'wasi:logging/logging@0.1.0-draft';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A module error whose message is the whole dead-letter reason. */
export class WeirError extends Error {
  constructor(message) {
    super(message);
    this.name = 'WeirError';
  }
}

/** The dead-letter reason for a thrown value. */
export function reason(err) {
  if (err instanceof WeirError) return err.message;
  if (err instanceof Error) return err.message ? `${err.name}: ${err.message}` : err.name;
  return String(err);
}

/** The pipeline's key/value settings for this module. */
export class Config {
  constructor(pairs = []) {
    this.pairs = Array.isArray(pairs) ? pairs.map(([k, v]) => [String(k), String(v)]) : Object.entries(pairs).map(([k, v]) => [k, String(v)]);
  }

  /** The value of `key` (the last one when given twice), else `fallback`. */
  get(key, fallback = undefined) {
    for (let i = this.pairs.length - 1; i >= 0; i--) {
      if (this.pairs[i][0] === key) return this.pairs[i][1];
    }
    return fallback;
  }

  require(key) {
    const value = this.get(key);
    if (value === undefined) throw new WeirError(`missing required config key "${key}"`);
    return value;
  }

  int(key, fallback) {
    const raw = this.get(key);
    if (raw === undefined) return fallback;
    if (!/^\s*[-+]?\d+\s*$/.test(raw)) throw new WeirError(`config key "${key}": cannot parse "${raw}" as an integer`);
    return Number.parseInt(raw, 10);
  }

  bool(key, fallback) {
    const raw = this.get(key);
    if (raw === undefined) return fallback;
    const word = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(word)) return true;
    if (['false', '0', 'no', 'off'].includes(word)) return false;
    throw new WeirError(`config key "${key}": cannot parse "${raw}" as true/false`);
  }

  /** The value split on commas, items trimmed, empty items dropped. */
  list(key, fallback = []) {
    const raw = this.get(key);
    if (raw === undefined) return [...fallback];
    return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

function kind(value) {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return { string: 'a string', number: 'a number', boolean: 'a boolean' }[typeof value] ?? typeof value;
}

/** One Kafka record. `value` is a Uint8Array; `json()` parses it on request. */
export class Record {
  constructor({ value, topic = 'test', partition = 0, offset = 0n, timestampMs, key, headers = [] }) {
    this.value = value;
    this.topic = topic;
    this.partition = partition;
    this.offset = offset;
    this.timestampMs = timestampMs;
    this.key = key;
    this.headers = headers;
  }

  /** A test record from bytes, a string or an object (JSON-encoded). */
  static from(value, fields = {}) {
    let bytes = value;
    if (typeof value === 'string') bytes = encoder.encode(value);
    else if (!(value instanceof Uint8Array)) bytes = encoder.encode(JSON.stringify(value));
    return new Record({ ...fields, value: bytes });
  }

  /** The value as UTF-8 text. */
  text() {
    try {
      return decoder.decode(this.value);
    } catch {
      throw new WeirError('value is not UTF-8');
    }
  }

  /** The value parsed as a JSON object (a fresh object per call). */
  json() {
    let parsed;
    try {
      parsed = JSON.parse(this.text());
    } catch (e) {
      if (e instanceof WeirError) throw e;
      throw new WeirError(`invalid JSON: ${e.message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new WeirError(`expected a JSON object, found ${kind(parsed)}`);
    }
    return parsed;
  }

  /** The first header named `key` (undefined when absent or null). */
  header(key) {
    const found = this.headers.find((h) => h.key === key);
    return found?.value ?? undefined;
  }

  /** `topic/partition/offset`. */
  coordinates() {
    return `${this.topic}/${this.partition}/${this.offset}`;
  }
}

function document(doc, index, id) {
  let body;
  if (doc instanceof Uint8Array) body = doc;
  else if (typeof doc === 'string') body = encoder.encode(doc);
  else if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) body = encoder.encode(JSON.stringify(doc));
  else throw new TypeError(`a document is an object, a string or bytes, not ${kind(doc)}`);
  return { body, index, id };
}

/** Emit documents (objects, strings or bytes); `{index, id}` options apply to each. */
export function emit(...docs) {
  let options = {};
  const last = docs[docs.length - 1];
  if (last && last.weirOptions) options = docs.pop();
  return { tag: 'emit', val: docs.map((d) => document(d, options.index, options.id)) };
}

/** Options for emit: `weir.emit(doc, weir.target({ index: 'x' }))`. */
export function target({ index, id } = {}) {
  return { weirOptions: true, index, id };
}

export function drop() {
  return { tag: 'drop' };
}

export function fail(why) {
  return { tag: 'fail', val: String(why) };
}

/** The documents of an emit outcome, parsed (for tests). */
export function documents(outcome) {
  if (outcome.tag !== 'emit') throw new Error(`expected emit, got ${JSON.stringify(outcome)}`);
  return outcome.val.map((d) => JSON.parse(new TextDecoder().decode(d.body)));
}

function outcomeOf(value) {
  if (value && (value.tag === 'emit' || value.tag === 'drop' || value.tag === 'fail')) return value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return emit(value);
  throw new TypeError(`process returned ${kind(value)}; return weir.emit(...), weir.drop(), weir.fail(reason) or an object`);
}

let moduleName = 'module';

/** Logging through the host (rate-limited per module). */
export const log = Object.fromEntries(
  ['trace', 'debug', 'info', 'warn', 'error'].map((level) => [level, (message) => hostLog(level, moduleName, String(message))]),
);

/**
 * The component's `processor` export from a module description:
 * `{ name, version, init?(config) -> settings, process?(record, settings),
 * processBatch?(records, settings) -> outcomes }`. `settings` is what
 * `init` returned, or the Config when there is no `init`.
 */
export function module(spec) {
  if (!spec || typeof spec.name !== 'string' || typeof spec.version !== 'string') {
    throw new TypeError('weir.module needs { name, version, process }');
  }
  if (typeof spec.process !== 'function' && typeof spec.processBatch !== 'function') {
    throw new TypeError('weir.module needs a process or processBatch function');
  }
  moduleName = spec.name;
  let settings;
  let initError = 'process called before a successful init';

  return {
    describe() {
      return { name: spec.name, version: spec.version };
    },
    init(pairs) {
      const config = new Config(pairs);
      try {
        settings = spec.init ? spec.init(config) : config;
        initError = undefined;
      } catch (e) {
        settings = undefined;
        initError = reason(e);
        // componentize-js returns a thrown value as the result's error.
        throw initError;
      }
    },
    process(batch) {
      if (initError !== undefined) return batch.map(() => fail(initError));
      try {
        return processBatch(spec, batch.map((r) => new Record(r)), settings);
      } catch (e) {
        const why = reason(e);
        return batch.map(() => fail(why));
      }
    },
  };
}

function processBatch(spec, records, settings) {
  if (spec.processBatch) {
    let outcomes;
    try {
      outcomes = Array.from(spec.processBatch(records, settings), outcomeOf);
    } catch (e) {
      const why = reason(e);
      return records.map(() => fail(why));
    }
    if (outcomes.length !== records.length) {
      const why = `processBatch returned ${outcomes.length} outcomes for ${records.length} records`;
      return records.map(() => fail(why));
    }
    return outcomes;
  }
  return records.map((record) => {
    try {
      return outcomeOf(spec.process(record, settings));
    } catch (e) {
      return fail(reason(e));
    }
  });
}

/**
 * Runs a processor as the host would: init with `config` (a Config, an
 * object or pairs), then one batch. Records may be Records or values for
 * `Record.from`. An init error throws; processing errors become fail outcomes.
 */
export function run(processor, records, config = []) {
  const pairs = config instanceof Config ? config.pairs : Array.isArray(config) ? config : Object.entries(config);
  processor.init(pairs);
  const batch = records.map((r, i) => (r instanceof Record ? r : Record.from(r, { offset: BigInt(i) })));
  return processor.process(batch);
}
