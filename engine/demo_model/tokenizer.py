"""A CLIP tokenizer built offline: byte-level characters plus the merges asked for. The demo
model's own tokenizer is made this way by its training script, and so are the test models'."""

from __future__ import annotations

from transformers import CLIPTokenizer


def _bytes_to_unicode() -> list[str]:
    """CLIP's reversible byte -> printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build_tokenizer(merges: list[str] | None = None, max_length: int = 77) -> CLIPTokenizer:
    """A character-level CLIP tokenizer (plus optional merges), with specials at the end."""
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars]
    for merge in merges or []:
        tokens.append(merge.replace(" ", ""))
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges or []]
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=max_length)
