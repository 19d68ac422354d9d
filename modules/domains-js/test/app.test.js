import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as weir from '../../../kits/javascript/weir-kit.js';
import { domainOf, processor } from '../app.js';

const one = (value, config) => {
  const [out] = weir.run(processor, [value], config);
  return weir.documents(out)[0];
};

test('domains from text and entities, distinct, normalised, in order', () => {
  const doc = one({
    text: 'see https://WWW.Example.com/a?b=1, and http://news.example.org. Again https://example.com/x',
    entities: { urls: [{ expanded_url: 'https://t.example.net/p' }, { expanded_url: null }] },
  });
  assert.deepEqual(doc.domains, ['example.com', 'news.example.org', 't.example.net']);
});

test('fields and target are configurable; other fields are untouched', () => {
  const doc = one({ title: 'https://a.io', text: 'https://b.io', n: 1 }, { fields: 'title', target: 'hosts' });
  assert.deepEqual(doc, { title: 'https://a.io', text: 'https://b.io', n: 1, hosts: ['a.io'] });
});

test('no URLs gives an empty list; broken URLs are skipped', () => {
  assert.deepEqual(one({ text: 'nothing here http://' }).domains, []);
  assert.equal(domainOf('http://[::1'), undefined);
  assert.equal(domainOf('https://Sub.Example.COM.'), 'sub.example.com');
});

test('a value that is not a JSON object fails with the reason, alone', () => {
  const outs = weir.run(processor, ['{"text":"https://a.io"}', '{"text": ', '"s"']);
  assert.equal(outs[0].tag, 'emit');
  assert.equal(outs[1].tag, 'fail');
  assert.match(outs[1].val, /^invalid JSON: /);
  assert.deepEqual(outs[2], weir.fail('expected a JSON object, found a string'));
});
