// Bundles src/extension.ts (and vscode-languageclient) into out/extension.js.
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = !watch && !process.argv.includes('--dev');

const options = {
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'out/extension.js',
  external: ['vscode'],
  format: 'cjs',
  platform: 'node',
  target: 'node18',
  sourcemap: production ? false : 'inline',
  minify: production,
  logLevel: 'warning',
};

if (process.argv.includes('--tests')) {
  // Unit tests of the vscode-free helpers, run with `node --test out-test/`.
  await esbuild.build({
    entryPoints: ['test/unit/util.test.ts'],
    bundle: true,
    outdir: 'out-test',
    format: 'cjs',
    platform: 'node',
    target: 'node18',
    logLevel: 'warning',
  });
} else if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log('esbuild: watching src/ ...');
} else {
  await esbuild.build(options);
}
