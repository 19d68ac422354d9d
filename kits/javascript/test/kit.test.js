import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as weir from '../weir-kit.js';

test('config getters and errors name the key', () => {
  const config = new weir.Config([['n', '3'], ['n', '4'], ['on', 'Yes'], ['xs', ' a, ,b ']]);
  assert.equal(config.get('n'), '4');
  assert.equal(config.get('missing', 'd'), 'd');
  assert.equal(config.int('n', 0), 4);
  assert.equal(config.bool('on', false), true);
  assert.deepEqual(config.list('xs'), ['a', 'b']);
  assert.throws(() => config.require('k'), { message: 'missing required config key "k"' });
  assert.throws(() => config.int('on', 0), { message: 'config key "on": cannot parse "Yes" as an integer' });
});

test('record json errors say what is wrong', () => {
  assert.deepEqual(weir.Record.from('{"a":"é"}').json(), { a: 'é' });
  assert.throws(() => weir.Record.from('{"a":1,}').json(), { message: /^invalid JSON: / });
  assert.throws(() => weir.Record.from('[1]').json(), { message: 'expected a JSON object, found an array' });
  assert.throws(() => weir.Record.from(new Uint8Array([0xff])).json(), { message: 'value is not UTF-8' });
  const r = weir.Record.from('{}', { topic: 't', partition: 2, offset: 9n, headers: [{ key: 'h', value: new Uint8Array([1]) }] });
  assert.equal(r.coordinates(), 't/2/9');
  assert.deepEqual(r.header('h'), new Uint8Array([1]));
  assert.equal(r.header('x'), undefined);
});

test('emit, drop, fail have the WIT variant shapes', () => {
  const out = weir.emit({ a: 1 }, '{"b":2}', weir.target({ index: 'idx' }));
  assert.equal(out.tag, 'emit');
  assert.deepEqual(out.val.map((d) => d.index), ['idx', 'idx']);
  assert.deepEqual(weir.documents(out), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(weir.drop(), { tag: 'drop' });
  assert.deepEqual(weir.fail('no'), { tag: 'fail', val: 'no' });
});

test('an exception fails only its record, with its type and message', () => {
  const processor = weir.module({
    name: 't',
    version: '0',
    process(record) {
      const doc = record.json();
      if (doc.k === 'b') doc.missing.field = 1;
      return doc;
    },
  });
  const outs = weir.run(processor, [{ k: 'a' }, { k: 'b' }, { k: 'c' }]);
  assert.deepEqual(outs.map((o) => o.tag), ['emit', 'fail', 'emit']);
  assert.match(outs[1].val, /^TypeError: /);
});

test('init state reaches process; an init error rejects and fails every record', () => {
  const processor = weir.module({
    name: 't',
    version: '1.0.0',
    init: (config) => ({ suffix: config.require('suffix') }),
    process: (record, settings) => ({ ...record.json(), s: settings.suffix }),
  });
  assert.deepEqual(processor.describe(), { name: 't', version: '1.0.0' });
  assert.deepEqual(weir.documents(weir.run(processor, [{ a: 1 }], { suffix: '!' })[0]), [{ a: 1, s: '!' }]);
  assert.throws(() => processor.init([]), (thrown) => thrown === 'missing required config key "suffix"');
  assert.deepEqual(processor.process([weir.Record.from('{}')]), [weir.fail('missing required config key "suffix"')]);
});

test('a wrong return value and a short processBatch are clear failures', () => {
  const wrong = weir.module({ name: 't', version: '0', process: () => 42 });
  assert.deepEqual(weir.run(wrong, [{}]), [
    weir.fail('TypeError: process returned a number; return weir.emit(...), weir.drop(), weir.fail(reason) or an object'),
  ]);
  const short = weir.module({ name: 't', version: '0', processBatch: () => [weir.drop()] });
  assert.deepEqual(weir.run(short, [{}, {}]), Array(2).fill(weir.fail('processBatch returned 1 outcomes for 2 records')));
});

