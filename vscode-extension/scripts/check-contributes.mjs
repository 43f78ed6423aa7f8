// Checks that every command contributed in package.json is registered in src/, that every
// registered plinth.* command is contributed, and that every contributed file exists.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const sources = readdirSync('src')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(join('src', f), 'utf8'))
  .join('\n');

const problems = [];
const contributed = pkg.contributes.commands.map((c) => c.command);
const registered = [...sources.matchAll(/registerCommand\(\s*'([^']+)'/g)].map((m) => m[1]);
for (const cmd of contributed) {
  if (!registered.includes(cmd)) problems.push(`command ${cmd} is contributed but has no handler in src/`);
}
for (const cmd of registered) {
  if (!contributed.includes(cmd)) problems.push(`command ${cmd} is registered but not contributed`);
}
for (const m of pkg.contributes.menus?.commandPalette ?? []) {
  if (!contributed.includes(m.command)) problems.push(`menu entry for unknown command ${m.command}`);
}
const settings = Object.keys(pkg.contributes.configuration.properties);
for (const used of sources.matchAll(/get<[^>]+>\('([^']+)'/g)) {
  if (!settings.includes(`plinth.${used[1]}`)) problems.push(`setting plinth.${used[1]} is read but not contributed`);
}
const files = [
  ...pkg.contributes.languages.map((l) => l.configuration),
  ...pkg.contributes.grammars.map((g) => g.path),
  ...pkg.contributes.snippets.map((s) => s.path),
];
for (const f of files) {
  if (!existsSync(f)) problems.push(`contributed file ${f} does not exist`);
  else JSON.parse(readFileSync(f, 'utf8'));
}
for (const ev of ['onLanguage:plinth', 'workspaceContains:**/*.plinth']) {
  if (!pkg.activationEvents.includes(ev)) problems.push(`activation event ${ev} is missing`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`check-contributes: ${p}`);
  process.exit(1);
}
console.log(`check-contributes: ${contributed.length} commands, ${settings.length} settings, ${files.length} files: ok`);
