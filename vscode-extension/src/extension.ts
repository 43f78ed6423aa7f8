import { execFile } from 'child_process';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';
import { expandPath, findExecutable, graphHtml, shellQuote } from './util';

const TERMINAL_NAME = 'Plinth';

let client: LanguageClient | undefined;
let outputChannel: vscode.OutputChannel;
let graphPanel: vscode.WebviewPanel | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  outputChannel = vscode.window.createOutputChannel('Plinth Language Server');
  context.subscriptions.push(outputChannel);

  context.subscriptions.push(
    vscode.commands.registerCommand('plinth.validate', () => runInTerminal('validate')),
    vscode.commands.registerCommand('plinth.plan', () => runInTerminal('plan')),
    vscode.commands.registerCommand('plinth.apply', () => runInTerminal('apply')),
    vscode.commands.registerCommand('plinth.showGraph', () => showGraph(context, false)),
    vscode.commands.registerCommand('plinth.showPlanGraph', () => showGraph(context, true)),
    vscode.commands.registerCommand('plinth.restartServer', () => restartServer(true)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('plinth.path') || e.affectsConfiguration('plinth.lsp')) {
        void restartServer(false);
      }
    }),
  );

  await startServer();
}

export async function deactivate(): Promise<void> {
  await stopServer();
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('plinth');
}

function firstWorkspaceDir(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

/** The configured `plinth.path`, expanded, and the executable it names (undefined if missing). */
function resolvePlinth(): { configured: string; executable: string | undefined } {
  const configured = config().get<string>('path', 'plinth') || 'plinth';
  const expanded = expandPath(configured, firstWorkspaceDir());
  return { configured, executable: findExecutable(expanded) };
}

async function reportMissingBinary(configured: string, what: string): Promise<void> {
  const openSettings = 'Open Settings';
  const choice = await vscode.window.showErrorMessage(
    `Plinth: cannot ${what}: the plinth executable '${configured}' was not found. ` +
      `Install plinth or set "plinth.path" to its full path` +
      (what.includes('language server') ? ` (or set "plinth.lsp.enabled" to false).` : '.'),
    openSettings,
  );
  if (choice === openSettings) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'plinth.path');
  }
}

// ---------------------------------------------------------------------------------------------
// Language server

async function startServer(): Promise<void> {
  if (!config().get<boolean>('lsp.enabled', true)) {
    outputChannel.appendLine('plinth.lsp.enabled is false: the language server is not started.');
    return;
  }
  const { configured, executable } = resolvePlinth();
  if (!executable) {
    outputChannel.appendLine(`plinth executable '${configured}' not found (setting plinth.path).`);
    void reportMissingBinary(configured, 'start the language server');
    return;
  }
  const args = ['lsp', ...config().get<string[]>('lsp.args', [])];
  const serverOptions: ServerOptions = {
    command: executable,
    args,
    transport: TransportKind.stdio,
    options: { cwd: firstWorkspaceDir() },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'plinth' }],
    outputChannel,
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.plinth'),
    },
  };
  // The id 'plinth' makes the client honour the "plinth.trace.server" setting.
  client = new LanguageClient('plinth', 'Plinth Language Server', serverOptions, clientOptions);
  outputChannel.appendLine(`Starting ${executable} ${args.join(' ')}`);
  try {
    await client.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    outputChannel.appendLine(`The language server failed to start: ${message}`);
    void vscode.window.showErrorMessage(
      `Plinth: the language server ('${executable} ${args.join(' ')}') failed to start: ${message}. ` +
        `Check "plinth.path" and "plinth.lsp.args", or set "plinth.lsp.enabled" to false.`,
    );
    const failed = client;
    client = undefined;
    try {
      await failed.dispose();
    } catch {
      // already stopped
    }
  }
}

async function stopServer(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    try {
      await running.stop();
    } catch (err) {
      outputChannel.appendLine(`Stopping the language server: ${String(err)}`);
    }
  }
}

async function restartServer(explicit: boolean): Promise<void> {
  await stopServer();
  if (explicit && !config().get<boolean>('lsp.enabled', true)) {
    void vscode.window.showInformationMessage(
      'Plinth: the language server is disabled ("plinth.lsp.enabled" is false).',
    );
    return;
  }
  await startServer();
}

// ---------------------------------------------------------------------------------------------
// Commands that run the CLI

/** The directory of the active Plinth file, else the first workspace folder. */
function targetDir(): string | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc && doc.uri.scheme === 'file') {
    return path.dirname(doc.uri.fsPath);
  }
  return firstWorkspaceDir();
}

async function saveDirtyPlinthFiles(dir: string): Promise<void> {
  for (const doc of vscode.workspace.textDocuments) {
    if (doc.isDirty && doc.uri.scheme === 'file' && path.dirname(doc.uri.fsPath) === dir &&
        doc.fileName.endsWith('.plinth')) {
      await doc.save();
    }
  }
}

function plinthTerminal(): vscode.Terminal {
  const existing = vscode.window.terminals.find(
    (t) => t.name === TERMINAL_NAME && t.exitStatus === undefined,
  );
  return existing ?? vscode.window.createTerminal({ name: TERMINAL_NAME });
}

async function runInTerminal(subcommand: 'validate' | 'plan' | 'apply'): Promise<void> {
  const dir = targetDir();
  if (!dir) {
    void vscode.window.showErrorMessage(`Plinth: open a .plinth file to ${subcommand} its directory.`);
    return;
  }
  const { configured, executable } = resolvePlinth();
  if (!executable) {
    await reportMissingBinary(configured, `run 'plinth ${subcommand}'`);
    return;
  }
  await saveDirtyPlinthFiles(dir);
  const terminal = plinthTerminal();
  terminal.show(true);
  terminal.sendText(`${shellQuote(executable)} ${subcommand} ${shellQuote(dir)}`);
}

function runPlinth(executable: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(executable, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        reject(new Error(detail));
      } else {
        resolve(stdout);
      }
    });
  });
}

// The configuration's dependency graph (`plinth graph DIR`), or with `plan`
// the execution graph of the plan against the workspace's state
// (`plinth graph --plan DIR`: a node per change).
async function showGraph(context: vscode.ExtensionContext, plan: boolean): Promise<void> {
  const dir = targetDir();
  if (!dir) {
    void vscode.window.showErrorMessage('Plinth: open a .plinth file to show its graph.');
    return;
  }
  const { configured, executable } = resolvePlinth();
  if (!executable) {
    await reportMissingBinary(configured, "run 'plinth graph'");
    return;
  }
  await saveDirtyPlinthFiles(dir);
  let dot: string;
  try {
    dot = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'plinth graph' },
      () => runPlinth(executable, plan ? ['graph', '--plan', dir] : ['graph', dir], dir),
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    outputChannel.appendLine(`plinth graph ${dir} failed:\n${message}`);
    void vscode.window.showErrorMessage(`Plinth: 'plinth graph' failed: ${message.split('\n')[0]}`);
    return;
  }
  if (!graphPanel) {
    graphPanel = vscode.window.createWebviewPanel(
      'plinthGraph',
      'Plinth Graph',
      vscode.ViewColumn.Beside,
      // No scripts and no local resources: the page is static text.
      { enableScripts: false, localResourceRoots: [] },
    );
    graphPanel.onDidDispose(() => (graphPanel = undefined), undefined, context.subscriptions);
  }
  graphPanel.title = `Plinth ${plan ? 'Plan Graph' : 'Graph'}: ${path.basename(dir)}`;
  graphPanel.webview.html = graphHtml(dir, dot, graphPanel.webview.cspSource);
  graphPanel.reveal(vscode.ViewColumn.Beside, true);
}
