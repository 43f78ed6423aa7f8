// Helpers without a dependency on the vscode module, so that they can be tested with plain Node.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Expands a leading `~` and resolves a relative path containing a separator against `baseDir`. */
export function expandPath(configured: string, baseDir: string | undefined): string {
  let p = configured.trim();
  if (p === '~' || p.startsWith('~/') || p.startsWith('~\\')) {
    p = path.join(os.homedir(), p.slice(1));
  }
  if (hasSeparator(p) && !path.isAbsolute(p) && baseDir) {
    p = path.resolve(baseDir, p);
  }
  return p;
}

function hasSeparator(p: string): boolean {
  return p.includes('/') || (process.platform === 'win32' && p.includes('\\'));
}

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) {
      return false;
    }
    if (process.platform === 'win32') {
      return true;
    }
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the executable that `command` names: a path (with a separator) is checked as it is, a
 * bare name is looked up in PATH (with PATHEXT on Windows). Returns undefined when none exists.
 */
export function findExecutable(
  command: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (command === '') {
    return undefined;
  }
  const exts =
    process.platform === 'win32'
      ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter((e) => e !== '')]
      : [''];
  if (hasSeparator(command) || path.isAbsolute(command)) {
    for (const ext of exts) {
      if (isExecutableFile(command + ext)) {
        return command + ext;
      }
    }
    return undefined;
  }
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, command + ext);
      if (isExecutableFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** Quotes one argument for the shell of the integrated terminal. */
export function shellQuote(arg: string, windows = process.platform === 'win32'): string {
  if (/^[A-Za-z0-9_\-+=.,/:@%]+$/.test(arg)) {
    return arg;
  }
  if (windows) {
    // Understood by cmd.exe and PowerShell for paths (which cannot contain '"').
    return `"${arg.replace(/"/g, '""')}"`;
  }
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Counts the nodes and edges of a DOT graph as `plinth graph` prints it (one statement a line). */
export function dotStats(dot: string): { nodes: number; edges: number } {
  const nodes = new Set<string>();
  let edges = 0;
  const id = String.raw`("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.]+)`;
  const edgeRe = new RegExp(String.raw`^\s*${id}\s*->\s*${id}`);
  const nodeRe = new RegExp(String.raw`^\s*${id}\s*\[`);
  for (const line of dot.split(/\r?\n/)) {
    const e = edgeRe.exec(line);
    if (e) {
      edges++;
      nodes.add(e[1]);
      nodes.add(e[2]);
      continue;
    }
    const n = nodeRe.exec(line);
    if (n && !['graph', 'node', 'edge'].includes(n[1])) {
      nodes.add(n[1]);
    }
  }
  return { nodes: nodes.size, edges };
}

/**
 * The webview page for a DOT graph: the text in a <pre>, nothing loaded from anywhere
 * (the Content-Security-Policy allows no scripts, images, fonts or connections).
 */
export function graphHtml(dir: string, dot: string, cspSource: string): string {
  const { nodes, edges } = dotStats(dot);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Plinth graph</title>
<style>
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
  pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size);
        background: var(--vscode-textCodeBlock-background); padding: 0.75em; overflow: auto; }
  .hint { color: var(--vscode-descriptionForeground); }
</style>
</head>
<body>
<h3>plinth graph ${escapeHtml(dir)}</h3>
<p class="hint">${nodes} nodes, ${edges} edges. Render it with Graphviz:
<code>plinth graph ${escapeHtml(shellQuote(dir))} | dot -Tsvg &gt; graph.svg</code></p>
<pre>${escapeHtml(dot)}</pre>
</body>
</html>
`;
}
