#!/usr/bin/env python3
"""An independent reference for GPT-2's byte-level BPE, used to derive the ids
that tests/test_tokenizer_bpe.c hard-codes.

It pre-tokenizes with GPT-2's pattern through the Python `regex` module (the
matcher GPT-2's encoder uses), so it shares no logic with the hand-written
pre-tokenizer in src/engine/tokenizer_bpe.c.  Bytes that are not valid UTF-8
enter the pattern as lone surrogates (Python's 'surrogateescape'), which the
pattern classes as neither space, letter nor number -- the choice the C code
makes for them.  The literal "<|endoftext|>" is the special id, as in the C
code; everything else follows GPT-2's encoder: the lowest-ranked adjacent
pair is merged everywhere, left to right, until no pair has a rank.

    python3 tools/gpt2_bpe_reference.py [--data DATA_DIR] [--ids FILE]

DATA_DIR defaults to ../shared/data/gpt2 beside the repository.  Prints one
C initialiser per test input, or with --ids the ids of FILE's bytes, one line
(for comparing the C encoder on large inputs).
"""
import argparse
import json
import os

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+"""
                        r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIAL = '<|endoftext|>'


def byte_alphabet():
    """byte -> the character that stands for it in the vocabulary."""
    kept = (list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1))
            + list(range(0xAE, 0xFF + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in kept:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Reference:
    def __init__(self, data_dir):
        with open(os.path.join(data_dir, 'encoder.json'), encoding='utf-8') as f:
            self.vocab = json.load(f)
        with open(os.path.join(data_dir, 'vocab.bpe'), encoding='utf-8') as f:
            lines = f.read().split('\n')
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
        self.rank = {pair: r for r, pair in enumerate(merges)}
        self.alphabet = byte_alphabet()

    def bpe(self, symbols):
        symbols = list(symbols)
        while len(symbols) > 1:
            pairs = {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}
            best = min(pairs, key=lambda p: self.rank.get(p, float('inf')))
            if best not in self.rank:
                break
            merged, i = [], 0
            while i < len(symbols):
                if (i + 1 < len(symbols) and symbols[i] == best[0]
                        and symbols[i + 1] == best[1]):
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def encode(self, data):
        """bytes -> ids"""
        text = data.decode('utf-8', 'surrogateescape')
        ids = []
        for k, segment in enumerate(text.split(SPECIAL)):
            if k > 0:
                ids.append(self.vocab[SPECIAL])
            for piece in PATTERN.findall(segment):
                raw = piece.encode('utf-8', 'surrogateescape')
                symbols = [self.alphabet[b] for b in raw]
                ids.extend(self.vocab[s] for s in self.bpe(symbols))
        return ids


# The inputs of tests/test_tokenizer_bpe.c, as bytes.
CASES = [
    ('hello', b'Hello world'),
    ('sky', b' The sky is blue.'),
    ('contractions', b"I'm sure they'll say don't"),
    ('contractions_case', b"'S 's 'sup I'M we're you've he'd"),
    ('numbers', b'2024 was 12.5%'),
    ('spaces', b'a  b\n\n c'),
    ('trailing', b'tail   \t\n'),
    ('punct', b'Wait... what?!? (yes) --- ok!! "quoted"'),
    ('nonascii', 'café naïve 東京 Привет'.encode()),
    ('emoji', 'I \u2764\ufe0f \U0001F980 and \U0001F44D\U0001F3FD'.encode()),
    ('unicode_space', 'x\u00a0y\u3000z \u00bd\u00b2 \u0661\u0662'.encode()),
    ('invalid', b'ab\xff\xfe c\xc3(\xe6\x9d x\xed\xa0\x80 \x80z'),
    ('control', b'a\x1cb\x01 \x7f'),
    ('special', b'Hi<|endoftext|> there<|endoftext|>'),
    ('repeat', b'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
    ('long_word', b'Supercalifragilisticexpialidocious' * 3
     + b' ' + b'=' * 70 + b'!?' * 20),
    ('empty', b''),
]


def c_string(data):
    """data as a C string literal; octal escapes never swallow a next digit."""
    out = ''
    for b in data:
        if b in (0x22, 0x5C):
            out += '\\' + chr(b)
        elif 0x20 <= b < 0x7F:
            out += chr(b)
        else:
            out += '\\%03o' % b
    return '"' + out + '"'


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=os.path.join(here, '..', '..', 'shared',
                                                   'data', 'gpt2'))
    ap.add_argument('--ids')
    args = ap.parse_args()
    ref = Reference(args.data)
    if args.ids:
        with open(args.ids, 'rb') as f:
            print(' '.join(map(str, ref.encode(f.read()))))
        return
    for name, data in CASES:
        ids = ref.encode(data)
        print('{ /* %s */ %s,' % (name, c_string(data)))
        print('    { %s }, %d },' % (', '.join(map(str, ids)) or '0', len(ids)))


if __name__ == '__main__':
    main()
