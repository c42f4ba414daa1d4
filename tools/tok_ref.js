#!/usr/bin/env node
// tok_ref.js: the reference tokenizer for clens's parity tests: the Rust
// Hugging Face `tokenizers` library (0.22.2) through its Node binding
// @anush008/tokenizers (installed under tools/ref by tests/suites/30-tokenizer-
// parity.sh or `npm ci --prefix tools/ref`). One process per tokenizer does
// all the work of a test run (rulings R2).
//
// usage: node tools/tok_ref.js TOKENIZER_JSON [--no-special] [--json]
//            [--encode IN.jsonl OUT.jsonl]... [--decode IN.jsonl OUT.jsonl]...
//            [--bench IN.jsonl THREADS_LABEL REPEAT]
//   --encode: IN lines {"text": s} or {"hex": bytes} (decoded as Node decodes
//             files: invalid UTF-8 -> U+FFFD). OUT lines {"ids": [...]} plus,
//             with --json, "tokens" and "offsets" (in characters, as the
//             binding reports them), and "dec": decode(ids, false).
//   --decode: IN lines {"ids": [...], "skip_special": bool} -> {"text": s}.
//   --bench:  encodes IN with encodeBatch REPEAT times and prints the best
//             time and tokens/s (threads come from RAYON_NUM_THREADS).
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, 'ref', 'node_modules', '@anush008', 'tokenizers'));

function readLines(file) {
  const data = fs.readFileSync(file, 'utf8');
  const out = [];
  for (const line of data.split('\n')) if (line.trim()) out.push(JSON.parse(line));
  return out;
}

function textOf(rec) {
  if (typeof rec.text === 'string') return rec.text;
  if (typeof rec.hex === 'string') return Buffer.from(rec.hex, 'hex').toString('utf8');
  throw new Error('line without "text" or "hex"');
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 1) {
    console.error('usage: node tools/tok_ref.js TOKENIZER_JSON [--no-special] [--json] [--encode IN OUT]... [--decode IN OUT]... [--bench IN LABEL REPEAT]');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(argv[0]);
  let addSpecial = true, json = false;
  const jobs = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-special') addSpecial = false;
    else if (a === '--json') json = true;
    else if (a === '--encode' || a === '--decode') { jobs.push([a, argv[i + 1], argv[i + 2]]); i += 2; }
    else if (a === '--bench') { jobs.push([a, argv[i + 1], argv[i + 2], Number(argv[i + 3])]); i += 3; }
    else { console.error('tok_ref.js: unknown argument ' + a); process.exit(2); }
  }
  for (const job of jobs) {
    const t0 = Date.now();
    if (job[0] === '--encode') {
      const recs = readLines(job[1]);
      const texts = recs.map(textOf);
      const out = [];
      const CH = 4096;
      for (let s = 0; s < texts.length; s += CH) {
        const encs = await tok.encodeBatch(texts.slice(s, s + CH), { addSpecialTokens: addSpecial });
        const decs = json ? await tok.decodeBatch(encs.map((e) => e.getIds()), false) : null;
        encs.forEach((e, k) => {
          const r = { ids: e.getIds() };
          if (json) { r.tokens = e.getTokens(); r.offsets = e.getOffsets(); r.dec = decs[k]; }
          out.push(JSON.stringify(r));
        });
      }
      fs.writeFileSync(job[2], out.join('\n') + '\n');
      console.error(`tok_ref: encoded ${texts.length} texts of ${job[1]} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else if (job[0] === '--decode') {
      const recs = readLines(job[1]);
      const out = [];
      for (const skip of [false, true]) {
        const idx = [];
        recs.forEach((r, i) => { if (!!r.skip_special === skip) idx.push(i); });
        const texts = await tok.decodeBatch(idx.map((i) => recs[i].ids), skip);
        idx.forEach((i, k) => { out[i] = JSON.stringify({ text: texts[k] }); });
      }
      fs.writeFileSync(job[2], out.join('\n') + '\n');
      console.error(`tok_ref: decoded ${recs.length} sequences of ${job[1]} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      const texts = readLines(job[1]).map(textOf);
      let best = Infinity, ntok = 0;
      for (let r = 0; r < job[3]; r++) {
        const a = process.hrtime.bigint();
        const encs = await tok.encodeBatch(texts, { addSpecialTokens: addSpecial });
        const dt = Number(process.hrtime.bigint() - a) / 1e9;
        ntok = 0;
        for (const e of encs) ntok += e.getLength();
        if (dt < best) best = dt;
      }
      console.log(`hf ${job[2]} texts ${texts.length} tokens ${ntok} seconds ${best.toFixed(4)} tokens_per_s ${(ntok / best).toFixed(0)}`);
    }
  }
}

main().catch((e) => { console.error('tok_ref.js: ' + (e && e.stack || e)); process.exit(1); });
