// plinth lsp driven over stdio by vscode-jsonrpc and vscode-languageserver-protocol,
// the libraries VS Code's own client is built on (docs/editor.md). Every feature of the
// features table once, through a real client: requests typed by the protocol package,
// messages framed and parsed by the client library, not by our code.
//
//   node test/lsp/conformance.mjs PATH/TO/plinth
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node.js';
import {
  InitializeRequest, InitializedNotification, DidOpenTextDocumentNotification, DidChangeTextDocumentNotification,
  PublishDiagnosticsNotification, HoverRequest, CompletionRequest, DefinitionRequest, ReferencesRequest,
  PrepareRenameRequest, RenameRequest, DocumentSymbolRequest, WorkspaceSymbolRequest, FoldingRangeRequest,
  DocumentFormattingRequest, CodeActionRequest, SemanticTokensRequest, SemanticTokensDeltaRequest,
  SignatureHelpRequest, InlayHintRequest, ShutdownRequest, ExitNotification,
} from 'vscode-languageserver-protocol';

const plinth = path.resolve(process.argv[2] ?? '../build/plinth');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'plinth-lsp-conformance-'));
const main = path.join(root, 'main.plinth');
const net = path.join(root, 'modules', 'net', 'net.plinth');
fs.mkdirSync(path.dirname(net), { recursive: true });
const mainText = `variable "env" {
  type    = string
  default = "dev"
}

region "eu" {}

module "net" {
  source = "./modules/net"
  cidr   = "10.0.0.0/16"
}

bucket "data" {
  region   = region.euu
  capacity = 10GiB
  labels   = { env = "\${var.env}", net = module.net.id }
}
`;
fs.writeFileSync(main, mainText);
fs.writeFileSync(net, 'variable "cidr" {\n  type = string\n}\n\noutput "id" {\n  value = "net-${var.cidr}"\n}\n');
const uri = (p) => pathToFileURL(p).toString();

const child = spawn(plinth, ['lsp'], { stdio: ['pipe', 'pipe', 'inherit'] });
const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
const diagnostics = new Map();
const waiters = [];
connection.onNotification(PublishDiagnosticsNotification.type, (p) => {
  diagnostics.set(p.uri, p.diagnostics);
  for (const w of waiters.splice(0)) w();
});
connection.onNotification('$/plinth/checked', () => {});
connection.listen();
const published = (u, pred) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no diagnostics for ${u}`)), 20000);
  const check = () => {
    if (diagnostics.has(u) && pred(diagnostics.get(u))) { clearTimeout(timer); resolve(diagnostics.get(u)); }
    else waiters.push(check);
  };
  check();
});
const at = (line, character, p = main) => ({ textDocument: { uri: uri(p) }, position: { line, character } });
let passed = 0;
const step = async (name, fn) => { await fn(); passed++; };

try {
  await step('initialize', async () => {
    const r = await connection.sendRequest(InitializeRequest.type,
      { processId: process.pid, rootUri: uri(root), capabilities: {}, workspaceFolders: null });
    assert.equal(r.capabilities.positionEncoding, 'utf-16');
    assert.equal(r.capabilities.textDocumentSync.change, 2);
    assert.ok(r.capabilities.semanticTokensProvider.full.delta);
    connection.sendNotification(InitializedNotification.type, {});
  });
  await connection.sendNotification(DidOpenTextDocumentNotification.type,
    { textDocument: { uri: uri(main), languageId: 'plinth', version: 1, text: mainText } });

  let diag;
  await step('diagnostics', async () => {
    [diag] = await published(uri(main), (d) => d.length > 0);
    assert.equal(diag.code, 'P0202');
    assert.equal(diag.source, 'plinth');
    assert.equal(diag.range.start.line, 13);
    assert.match(diag.message, /help: did you mean 'region\.eu'\?/);
  });
  await step('code action', async () => {
    const actions = await connection.sendRequest(CodeActionRequest.type,
      { textDocument: { uri: uri(main) }, range: diag.range, context: { diagnostics: [diag] } });
    assert.equal(actions[0].kind, 'quickfix');
    assert.equal(actions[0].edit.changes[uri(main)][0].newText, 'region.eu');
  });
  await step('incremental change clears diagnostics', async () => {
    await connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: uri(main), version: 2 },
      contentChanges: [{ range: { start: { line: 13, character: 22 }, end: { line: 13, character: 23 } }, text: '' }],
    });
    await published(uri(main), (d) => d.length === 0);
  });
  await step('hover', async () => {
    const h = await connection.sendRequest(HoverRequest.type, at(14, 4));
    assert.match(h.contents.value, /capacity: size/);
  });
  await step('completion inside ${ }', async () => {
    const c = await connection.sendRequest(CompletionRequest.type, at(15, 28));
    assert.ok(c.items.some((i) => i.label === 'env'), JSON.stringify(c.items.map((i) => i.label)));
  });
  await step('signature help', async () => {
    await connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: uri(main), version: 3 },
      contentChanges: [{ range: { start: { line: 16, character: 1 }, end: { line: 16, character: 1 } },
        text: '\n\noutput "n" {\n  value = upper(var.env)\n}' }],
    });
    const s = await connection.sendRequest(SignatureHelpRequest.type, at(19, 16));
    assert.match(s.signatures[0].label, /^upper\(/);
  });
  await step('definition into a module', async () => {
    const d = await connection.sendRequest(DefinitionRequest.type, at(15, 52));
    assert.equal(d.uri, uri(net));
    assert.equal(d.range.start.line, 4);
  });
  await step('references across modules', async () => {
    const refs = await connection.sendRequest(ReferencesRequest.type,
      { ...at(0, 11, net), context: { includeDeclaration: true } });
    assert.equal(refs.length, 3);
  });
  await step('prepareRename and rename across modules', async () => {
    const prep = await connection.sendRequest(PrepareRenameRequest.type, at(9, 3));
    assert.equal(prep.placeholder, 'cidr');
    const edit = await connection.sendRequest(RenameRequest.type, { ...at(9, 3), newName: 'block' });
    assert.equal(edit.changes[uri(net)].length, 2);
    assert.equal(edit.changes[uri(main)].length, 1);
  });
  await step('symbols', async () => {
    const doc = await connection.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri: uri(main) } });
    assert.deepEqual(doc.map((s) => s.name), ['variable "env"', 'region.eu', 'module "net"', 'bucket.data', 'output "n"']);
    const ws = await connection.sendRequest(WorkspaceSymbolRequest.type, { query: 'cidr' });
    assert.deepEqual(ws.map((s) => s.name), ['var.cidr']);
  });
  await step('folding', async () => {
    const f = await connection.sendRequest(FoldingRangeRequest.type, { textDocument: { uri: uri(main) } });
    assert.ok(f.some((r) => r.startLine === 0 && r.endLine === 2));
  });
  await step('semantic tokens full and delta', async () => {
    const full = await connection.sendRequest(SemanticTokensRequest.type, { textDocument: { uri: uri(main) } });
    assert.deepEqual(full.data.slice(0, 5), [0, 0, 8, 6, 0]);
    const delta = await connection.sendRequest(SemanticTokensDeltaRequest.type,
      { textDocument: { uri: uri(main) }, previousResultId: full.resultId });
    assert.deepEqual(delta.edits, []);
  });
  await step('inlay hints', async () => {
    const hints = await connection.sendRequest(InlayHintRequest.type,
      { textDocument: { uri: uri(main) }, range: { start: { line: 0, character: 0 }, end: { line: 30, character: 0 } } });
    assert.ok(Array.isArray(hints));
  });
  await step('formatting', async () => {
    await connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: uri(main), version: 4 },
      contentChanges: [{ range: { start: { line: 14, character: 10 }, end: { line: 14, character: 10 } }, text: '    ' }],
    });
    const edits = await connection.sendRequest(DocumentFormattingRequest.type,
      { textDocument: { uri: uri(main) }, options: { tabSize: 2, insertSpaces: true } });
    assert.equal(edits.length, 1);  // the spaces typed before `=`
    assert.equal(edits[0].range.start.line, 14);
    assert.ok(edits.every((e) => e.newText.trim() === ''));  // whitespace only
  });
  await step('a syntax error leaves the rest working', async () => {
    await connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: uri(main), version: 5 },
      contentChanges: [{ range: { start: { line: 4, character: 0 }, end: { line: 4, character: 0 } },
        text: 'bucket "broken" {\n  capacity = = 1\n}\n' }],
    });
    const d = await published(uri(main), (ds) => ds.length > 0);
    assert.equal(d[0].range.start.line, 5);
    const def = await connection.sendRequest(DefinitionRequest.type, at(18, 52));
    assert.equal(def.uri, uri(net));
  });
  await step('shutdown and exit', async () => {
    await connection.sendRequest(ShutdownRequest.type);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await connection.sendNotification(ExitNotification.type);
    assert.equal(await exited, 0);
  });
  console.log(`lsp conformance: ${passed} checks passed against ${plinth}`);
} finally {
  connection.dispose();
  child.kill();
  fs.rmSync(root, { recursive: true, force: true });
}
