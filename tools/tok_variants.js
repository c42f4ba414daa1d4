#!/usr/bin/env node
// tok_variants.js: writes tokenizer.json variants that exercise the parts of
// the format the three real tokenizers do not use, for the parity suite:
// the same files go to the reference (tools/tok_ref.js) and to clens.
//
// usage: node tools/tok_variants.js QWEN3_JSON DOLMA2_JSON OUT_DIR
//   gpt2style.json   dolma2 vocab, ByteLevel pre-tokenizer with add_prefix_space
//                    and the GPT-2 regex, ByteLevel post-processor trimming offsets
//   flags.json       Qwen3 with added-token flags (lstrip, rstrip, single_word,
//                    normalized) and a TemplateProcessing post-processor (BOS + EOS)
//   nfkc.json        Qwen3 with NFKC and normalized added tokens (one written
//                    in a non-NFKC form)
//   nfd.json         Qwen3 with Sequence[NFD, NFC, NFD]
//   splits.json      Qwen3 with several Split steps: String pattern
//                    MergedWithNext, regex MergedWithPrevious, Contiguous,
//                    Removed with invert, before the Qwen2 regex
//   ignore_merges.json  dolma2 with ignore_merges = true (Llama-3 style)
'use strict';
const fs = require('fs');
const path = require('path');

const [q3p, d2p, out] = process.argv.slice(2);
if (!out) { console.error('usage: node tools/tok_variants.js QWEN3_JSON DOLMA2_JSON OUT_DIR'); process.exit(2); }
fs.mkdirSync(out, { recursive: true });
const load = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const save = (name, obj) => fs.writeFileSync(path.join(out, name), JSON.stringify(obj));
const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
const added = (id, content, o = {}) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false }, o);

{
  const t = load(d2p);
  t.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  t.post_processor = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  save('gpt2style.json', t);
}
{
  const t = load(q3p);
  for (const a of t.added_tokens) {
    if (a.content === '<|im_start|>') a.lstrip = true;
    if (a.content === '<|im_end|>') a.rstrip = true;
    if (a.content === '<think>') a.single_word = true;
    if (a.content === '</think>') { a.lstrip = true; a.rstrip = true; }
    if (a.content === '<tool_call>') a.normalized = true;
  }
  t.added_tokens.push(added(151669, 'wait', { single_word: true }));
  t.added_tokens.push(added(151670, ' Hmm', { normalized: true }));
  t.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '<|im_end|>', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: {
      '<|endoftext|>': { id: '<|endoftext|>', ids: [151643], tokens: ['<|endoftext|>'] },
      '<|im_end|>': { id: '<|im_end|>', ids: [151645], tokens: ['<|im_end|>'] },
    },
  };
  save('flags.json', t);
}
{
  const t = load(q3p);
  t.normalizer = { type: 'NFKC' };
  t.added_tokens.push(added(151669, '\ufb01x', { normalized: true }));   // "ﬁx" matches "fix" after NFKC
  t.added_tokens.push(added(151670, 'Ⅻ', { normalized: true, special: true }));
  save('nfkc.json', t);
}
{
  const t = load(q3p);
  t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'NFC' }, { type: 'NFD' }] };
  save('nfd.json', t);
}
{
  const t = load(q3p);
  const qwenSplit = t.pre_tokenizer.pretokenizers[0];
  t.pre_tokenizer = {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { String: '\n' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '[.,;:!?]+' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'Split', pattern: { Regex: '\\d' }, behavior: 'Contiguous', invert: false },
      { type: 'Split', pattern: { Regex: '\\s*' }, behavior: 'Isolated', invert: false },
      { type: 'Split', pattern: { Regex: '[^\\t]+' }, behavior: 'Removed', invert: true },
      qwenSplit,
      byteLevel,
    ],
  };
  save('splits.json', t);
}
{
  const t = load(d2p);
  t.model.ignore_merges = true;
  save('ignore_merges.json', t);
}
