// `node --import ./native.js --test`: lets weir-kit.js run outside
// WebAssembly by resolving the host's `wasi:logging` import to a stand-in
// that writes one line per call to stderr.
import { register } from 'node:module';

const logging = `export function log(level, context, message) {
  process.stderr.write(level + ' ' + context + ': ' + message + '\\n');
}`;

const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'wasi:logging/logging@0.1.0-draft') {
    return { url: ${JSON.stringify('data:text/javascript,' + encodeURIComponent(logging))}, shortCircuit: true };
  }
  return next(specifier, context);
}`;

register('data:text/javascript,' + encodeURIComponent(hooks));
