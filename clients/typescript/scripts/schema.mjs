// Generates src/schema.ts, the client's types, from creditd's OpenAPI
// document (internal/httpapi/openapi/openapi.json, served at
// GET /openapi.json) with openapi-typescript. The one place that says how
// the types are generated:
//
//   node scripts/schema.mjs                  write src/schema.ts   (npm run generate)
//   node scripts/schema.mjs --check          exit 1 if src/schema.ts is stale (npm run check:schema)
//   node scripts/schema.mjs --out FILE       write FILE instead (the Go test compares it)
//
// Never edit src/schema.ts by hand: change the document, then regenerate.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const documentPath = path.resolve(root, "../../internal/httpapi/openapi/openapi.json");
const schemaPath = path.join(root, "src/schema.ts");

const args = process.argv.slice(2);
const check = args.includes("--check");
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? path.resolve(args[outIndex + 1] ?? "") : schemaPath;
if (outIndex >= 0 && !args[outIndex + 1]) {
  console.error("schema: --out needs a file");
  process.exit(2);
}

const ast = await openapiTS(pathToFileURL(documentPath), {
  // Every option is openapi-typescript's default but these two:
  // creditd's defaults are all on request members (a grant's priority, a
  // plan's priority, a page's limit…), which stay optional: the default is
  // what the server uses when the member is absent.
  defaultNonNullable: false,
  silent: true,
});
const generated = COMMENT_HEADER + astToString(ast);

if (check) {
  const current = fs.existsSync(schemaPath) ? fs.readFileSync(schemaPath, "utf8") : "";
  if (current !== generated) {
    console.error(`schema: ${path.relative(process.cwd(), schemaPath)} is not what openapi-typescript generates from the OpenAPI document; run: npm run generate`);
    process.exit(1);
  }
  console.log("schema: src/schema.ts is up to date");
} else {
  fs.writeFileSync(out, generated, "utf8");
}
