// A Weir module in JavaScript. Rename it and write process().
import * as weir from './weir-kit.js';

export const processor = weir.module({
  name: 'my-module',
  version: '0.1.0',
  process(record, config) {
    const doc = record.json(); // an object; a record that is not a JSON object fails with the reason
    doc[config.get('field', 'source')] = record.topic;
    return weir.emit(doc);
  },
});
