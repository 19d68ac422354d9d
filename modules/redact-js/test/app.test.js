// The same cases as modules/redact-py/tests/test_app.py.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as weir from '../../../kits/javascript/weir-kit.js';
import { processor } from '../app.js';

const one = (value, config) => weir.documents(weir.run(processor, [value], config)[0])[0];

test('emails and phones are replaced and counted', () => {
  assert.deepEqual(one({ text: 'mail ann.lee@example.co.uk or call +44 20 7946 0958', id: 7 }), {
    text: 'mail [EMAIL] or call [PHONE]',
    id: 7,
    redacted: { emails: 1, phones: 1, keywords: 0 },
  });
});

test('keywords are whole words, case-insensitive', () => {
  const doc = one({ text: 'Project Falcon, falconry and FALCON.' }, { keywords: 'falcon, secret' });
  assert.equal(doc.text, 'Project [REDACTED], falconry and [REDACTED].');
  assert.equal(doc.redacted.keywords, 2);
});

test('only configured fields and switches', () => {
  assert.deepEqual(one({ title: 'a@b.io', text: 'a@b.io 555-123-4567' }, { fields: 'text', phones: 'false' }), {
    title: 'a@b.io',
    text: '[EMAIL] 555-123-4567',
    redacted: { emails: 1, phones: 0, keywords: 0 },
  });
});

test('a bad setting rejects the module naming the key', () => {
  assert.throws(() => weir.run(processor, [], { emails: 'maybe' }), (e) => e === 'config key "emails": cannot parse "maybe" as true/false');
});
