// Compile a solc standard-JSON input read from stdin with the pinned solcjs from node_modules,
// resolving imports from node_modules, and write the standard-JSON output to stdout.
// Used by `manage.py compilecontracts`; not meant to be run by hand.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..", "..");
const input = fs.readFileSync(0, "utf8");

function findImports(importPath) {
  for (const base of [path.join(root, "node_modules"), root]) {
    const candidate = path.join(base, importPath);
    if (candidate.startsWith(base) && fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `not found: ${importPath}` };
}

const output = JSON.parse(solc.compile(input, { import: findImports }));
output.compilerVersion = solc.version();
process.stdout.write(JSON.stringify(output));
