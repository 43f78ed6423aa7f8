import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { dotStats, escapeHtml, expandPath, findExecutable, graphHtml, shellQuote } from '../../src/util';

const DOT = `digraph plinth {
  rankdir = "BT";
  node [shape = box];
  n0 [label = "region.eu"];
  n1 [label = "region.us"];
  n2 [label = "bucket.data"];
  n2 -> n0;
  n2 -> n1;
}
`;

test('dotStats counts the nodes and edges of plinth graph output', () => {
  assert.deepEqual(dotStats(DOT), { nodes: 3, edges: 2 });
  assert.deepEqual(dotStats('digraph plinth {\n}\n'), { nodes: 0, edges: 0 });
});

test('graphHtml escapes the DOT text and loads nothing', () => {
  const html = graphHtml('/tmp/a b', DOT.replace('region.eu', '<script>x</script>'), 'vscode-resource:');
  assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
  assert.ok(!html.includes('<script'));
  assert.ok(html.includes("default-src 'none'"));
  assert.ok(!/\b(src|href)\s*=/.test(html));
  assert.ok(html.includes('3 nodes, 2 edges'));
});

test('escapeHtml', () => {
  assert.equal(escapeHtml(`a<b>&"c"'`), 'a&lt;b&gt;&amp;&quot;c&quot;&#39;');
});

test('shellQuote', () => {
  assert.equal(shellQuote('/work/infra'), '/work/infra');
  assert.equal(shellQuote('/work/my infra', false), `'/work/my infra'`);
  assert.equal(shellQuote(`it's`, false), `'it'\\''s'`);
  assert.equal(shellQuote('C:\\My Infra', true), '"C:\\My Infra"');
});

test('expandPath', () => {
  assert.equal(expandPath('plinth', '/ws'), 'plinth');
  assert.equal(expandPath('~/bin/plinth', '/ws'), path.join(os.homedir(), 'bin/plinth'));
  assert.equal(expandPath('./build/plinth', '/ws'), path.resolve('/ws', 'build/plinth'));
  assert.equal(expandPath('/usr/bin/plinth', '/ws'), '/usr/bin/plinth');
});

test('findExecutable looks names up in PATH and checks paths', { skip: process.platform === 'win32' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plinth-ext-'));
  try {
    const exe = path.join(dir, 'plinth');
    fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'notexec'), '', { mode: 0o644 });
    assert.equal(findExecutable('plinth', { PATH: `/nonexistent${path.delimiter}${dir}` }), exe);
    assert.equal(findExecutable('plinth', { PATH: '/nonexistent' }), undefined);
    assert.equal(findExecutable(exe, { PATH: '' }), exe);
    assert.equal(findExecutable(path.join(dir, 'notexec'), { PATH: '' }), undefined);
    assert.equal(findExecutable(dir, { PATH: '' }), undefined);
    assert.equal(findExecutable('', { PATH: dir }), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
