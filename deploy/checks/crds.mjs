// Validates the custom resources of the rendered manifests (the ones kubernetes-validate has no
// schema for) against @kubernetes-models packages, which are generated from the upstream Go API
// types (sigs.k8s.io/gateway-api, prometheus-operator):
//   1. strictly, by TypeScript: each object becomes a literal typed with the model's interface, and
//      the compiler's excess-property check rejects any unknown field at any depth (a typo'd
//      `backendRef`, `intervall`), as well as wrong value types;
//   2. by the models' generated JSON-schema validators: enums, patterns (durations), required
//      fields, integer ranges.
// Usage: node crds.mjs CRDS.json   (an array of {source, doc}, written by validate.py)
// Offline: everything comes from node_modules (scripts/test-deploy runs `npm ci` here).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import ts from "typescript";

// apiVersion group → the package that models it. A group missing here is an error, not a skip.
const PACKAGES = {
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

const here = path.dirname(fileURLToPath(import.meta.url));
const items = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failures = 0;
const fail = (what, message) => {
  failures++;
  console.error(`FAIL ${what}: ${message}`);
};
const label = (item) => `${item.source}: ${item.doc.kind}/${item.doc.metadata?.name}`;

const typed = [];
for (const item of items) {
  const [group, version] = String(item.doc.apiVersion).split("/");
  const pkg = PACKAGES[group];
  if (!pkg || !version) {
    fail(label(item), `no schema for ${item.doc.apiVersion} (known: ${Object.keys(PACKAGES).join(", ")})`);
    continue;
  }
  const module = `${pkg}/${group}/${version}/${item.doc.kind}`;
  let model;
  try {
    model = (await import(module))[item.doc.kind];
  } catch (e) {
    fail(label(item), `no model ${module}: ${e.message}`);
    continue;
  }
  try {
    new model(item.doc).validate();
  } catch (e) {
    fail(label(item), e.message);
  }
  typed.push({ item, module });
}

// One virtual TypeScript file beside this script (so node_modules resolves), never written.
const file = path.join(here, "__rendered_crds__.ts");
const lines = [];
const owners = []; // line index → item
typed.forEach(({ item, module }, i) => {
  lines.push(`import type { I${item.doc.kind} as T${i} } from "${module}";`);
  owners.push(item);
});
typed.forEach(({ item }, i) => {
  const body = `export const doc${i}: T${i} = ${JSON.stringify(item.doc, null, 2)};`.split("\n");
  for (const l of body) {
    lines.push(l);
    owners.push(item);
  }
});
const source = lines.join("\n") + "\n";
const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
};
const host = ts.createCompilerHost(options);
const { getSourceFile, fileExists, readFile } = host;
host.getSourceFile = (name, lang, ...rest) =>
  name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest);
host.fileExists = (name) => name === file || fileExists.call(host, name);
host.readFile = (name) => (name === file ? source : readFile.call(host, name));
if (typed.length > 0) {
  const program = ts.createProgram([file], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (d.file && d.file.fileName === file && d.start !== undefined) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      fail(label(owners[line]), `${message}\n    at: ${lines[line].trim()}`);
    } else {
      fail("typescript", message);
    }
  }
}

console.log(`custom resources: ${items.length} checked (${[...new Set(items.map((i) => `${i.doc.kind}`))].join(", ")}), ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
