import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as weir from '../weir-kit.js';
import { processor } from '../app.js';

test('adds the topic', () => {
  const [out] = weir.run(processor, [weir.Record.from({ a: 1 }, { topic: 'news' })]);
  assert.deepEqual(weir.documents(out), [{ a: 1, source: 'news' }]);
});

test('invalid JSON fails the record', () => {
  const [out] = weir.run(processor, ['{']);
  assert.equal(out.tag, 'fail');
  assert.match(out.val, /^invalid JSON: /);
});
