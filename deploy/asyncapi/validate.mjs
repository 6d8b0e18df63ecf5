// Parse an AsyncAPI document with the official parser and print its diagnostics.
//
//   node validate.mjs path/to/asyncapi.json
//
// Exit 0: valid (warnings may be printed); 1: errors; 2: usage or unreadable file.
// The document must be self-contained: a $ref that does not start with "#" is an
// error here, so validating never reads other files or the network. Beyond the
// parser (whose AsyncAPI 3 rules do not look at examples), every message example
// must match the message's payload and headers schemas.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

function externalRefs(node, path = '#', found = []) {
  if (Array.isArray(node)) {
    node.forEach((item, i) => externalRefs(item, `${path}/${i}`, found));
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && !value.startsWith('#')) {
        found.push(`${path}/$ref: ${value}`);
      } else {
        externalRefs(value, `${path}/${key}`, found);
      }
    }
  }
  return found;
}

// Errors of the examples of every message, as "path: message" strings.
function exampleErrors(document) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const errors = [];
  for (const message of document.allMessages()) {
    const schemas = { payload: message.payload()?.json(), headers: message.headers()?.json() };
    const validators = {};
    for (const [part, schema] of Object.entries(schemas)) {
      if (schema) validators[part] = ajv.compile(schema);
    }
    message.examples().all().forEach((example, i) => {
      const where = `#/components/messages/${message.id()}/examples/${i}`;
      for (const [part, validate] of Object.entries(validators)) {
        const value = example[part]();
        if (value === undefined || validate(value)) continue;
        for (const e of validate.errors) {
          errors.push(`${where}/${part}${e.instancePath} (${example.name()}): ${e.message}`);
        }
      }
    });
  }
  return errors;
}

async function main(file) {
  if (!file) {
    console.error('usage: node validate.mjs ASYNCAPI_FILE');
    return 2;
  }
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    console.error(`${file}: cannot read: ${err.message}`);
    return 2;
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    console.error(`${file}: error invalid-json: ${err.message}`);
    return 1;
  }
  const external = externalRefs(parsed);
  for (const ref of external) {
    console.error(`${file}: error external-ref: only local references are allowed, found ${ref}`);
  }
  if (external.length) return 1;

  const { document, diagnostics } = await new Parser().parse(text, { source: file });
  let errors = 0;
  for (const d of diagnostics) {
    const severity = SEVERITY[d.severity] ?? String(d.severity);
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    const where = d.path && d.path.length ? ` at #/${d.path.join('/')}` : '';
    console.error(`${file}: ${severity} ${d.code}${where}: ${d.message}`);
  }
  if (document !== undefined) {
    for (const e of exampleErrors(document)) {
      errors += 1;
      console.error(`${file}: error example-mismatch at ${e}`);
    }
  }
  if (errors || document === undefined) {
    console.error(`${file}: invalid (${errors} error(s))`);
    return 1;
  }
  console.log(`${file}: valid AsyncAPI ${document.version()} (${diagnostics.length} diagnostic(s))`);
  return 0;
}

process.exitCode = await main(process.argv[2]);
