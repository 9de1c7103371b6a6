// Runs a WASI command (wasm32-wasip1) in Node's V8 through `node:wasi`:
//   node run-node.mjs MODULE.wasm [ARGS...]
// Prints what the module prints; exits with its exit code. Compile time of the module
// goes to standard error.
import { readFile } from 'node:fs/promises';
import { argv, exit, hrtime, stderr } from 'node:process';
import { WASI } from 'node:wasi';

const [wasmPath, ...args] = argv.slice(2);
if (!wasmPath) {
  stderr.write('usage: node run-node.mjs MODULE.wasm [ARGS...]\n');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: ['wasm-lookup', ...args], env: {}, returnOnExit: true });
const t0 = hrtime.bigint();
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
stderr.write(`node: compiled and instantiated in ${Number(hrtime.bigint() - t0) / 1e6} ms\n`);
exit(wasi.start(instance));
