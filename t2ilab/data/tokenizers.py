"""Text tokenizers (chapter "Birds, captions and tokens").

- `WordTokenizer`: one id per word, built from training captions; what the mini-CLIP text tower reads.
- `BPETokenizer`: a SentencePiece BPE model (Kudo & Richardson, 2018; BPE after Sennrich et al., 2016)
  trained on the training captions; what the DALL-E-style model reads, as in DALL-E and CogView.

Both raise `ValueError` on an empty prompt, report words they have never seen, and round-trip known text.
"""
from __future__ import annotations

import collections
import hashlib
import io
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*|[.,;]")
_NOT_A_WORD = re.compile(r"[a-z\s.,;:'!?()\-]")  # what is left after removing these is lost by split_words
OnUnknown = Literal["replace", "warn", "error"]


def split_words(text: str) -> list[str]:
    """Lower-case words and punctuation: "A red-crowned bird." -> ['a', 'red-crowned', 'bird', '.']."""
    return _WORD.findall(text.lower())


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty prompt: describe the bird, e.g. 'a small bird with a red crown'")


class WordTokenizer:
    """Word-level tokenizer: `encode(text) -> (max_length,)` ids as `<bos> words <eos> <pad>...`."""

    def __init__(self, vocab: list[str], max_length: int = 40):
        if list(vocab[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"vocab must start with the special tokens {SPECIALS}")
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 (<bos>, one word, <eos>), got {max_length}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (self.index[s] for s in SPECIALS)

    @classmethod
    def build(cls, texts: Iterable[str], max_length: int = 40, min_count: int = 1) -> "WordTokenizer":
        """Vocabulary of every word seen at least `min_count` times, most frequent first (ties alphabetical)."""
        counts = collections.Counter(w for t in texts for w in split_words(t))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + words, max_length)

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown_words(self, text: str) -> list[str]:
        """The words of `text` that are not in the vocabulary."""
        return [w for w in split_words(text) if w not in self.index]

    def encode(self, text: str, on_unknown: OnUnknown = "warn", truncate: bool = False) -> torch.Tensor:
        """Ids (max_length,) long: `<bos> words <eos> <pad>...`.

        Unknown words become `<unk>` with a warning ("warn", the default), silently ("replace") or are refused
        ("error"); characters no word is made of (accents, other scripts, emoji) are treated the same way, since
        they would otherwise vanish. A text with more words than fit is refused, unless `truncate` (training data
        read in bulk) asks to keep its first max_length - 2 words."""
        if on_unknown not in ("replace", "warn", "error"):
            raise ValueError(f"on_unknown must be 'replace', 'warn' or 'error', got {on_unknown!r}")
        _check_text(text)
        words = split_words(text)
        if not words:
            raise ValueError(f"prompt {text!r} has no words")
        dropped = sorted(set(_NOT_A_WORD.sub("", text.lower())))
        unknown = [w for w in words if w not in self.index]
        if (unknown or dropped) and on_unknown == "error":
            raise ValueError(f"unknown words {unknown} and characters {dropped}; the vocabulary has {len(self)} "
                             f"entries of lower-case English letters" if dropped else
                             f"unknown words {unknown}; the vocabulary has {len(self)} entries")
        if (unknown or dropped) and on_unknown == "warn":
            warnings.warn(f"unknown words {unknown} were replaced by {UNK}" + (f"; characters {dropped} were dropped"
                                                                              if dropped else ""), stacklevel=2)
        if truncate:
            words = words[: self.max_length - 2]
        if len(words) > self.max_length - 2:
            raise ValueError(f"the text has {len(words)} words and punctuation marks; this tokenizer reads at most "
                             f"{self.max_length - 2}")
        ids = [self.bos_id] + [self.index.get(w, self.unk_id) for w in words] + [self.eos_id]
        return torch.tensor(ids + [self.pad_id] * (self.max_length - len(ids)), dtype=torch.long)

    def encode_batch(self, texts: list[str], on_unknown: OnUnknown = "warn", truncate: bool = False) -> torch.Tensor:
        """(B, max_length) ids; an error names the text of the batch it is about."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts, got one string; use encode, or wrap it in a list")
        rows = []
        for i, text in enumerate(texts):
            try:
                rows.append(self.encode(text, on_unknown, truncate))
            except (ValueError, TypeError) as err:
                raise type(err)(f"text {i} of the batch ({str(text)[:60]!r}): {err}") from None
        return torch.stack(rows)

    def encode_per_image(self, captions_per_image: list[list[str]]) -> torch.Tensor:
        """(N, K, max_length) ids of the K captions of each of N images: a data set's training text read in bulk
        (words outside the vocabulary as <unk>, long captions truncated)."""
        return torch.stack([self.encode_batch(list(c), "replace", truncate=True) for c in captions_per_image])

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Ids -> text, dropping specials; punctuation attaches to the previous word."""
        words = [self.vocab[int(i)] for i in ids if int(i) not in (self.pad_id, self.bos_id, self.eos_id)]
        return re.sub(r" ([.,;])", r"\1", " ".join(words))


class BPETokenizer:
    """SentencePiece BPE, trained deterministically on captions: `encode(text) -> list[int]`."""

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 512, cache: str | Path | None = None) -> "BPETokenizer":
        """Train on `texts` (one caption each); with `cache`, reuse a model trained on the same texts."""
        import sentencepiece as spm

        texts = [t.lower() for t in texts]
        digest = hashlib.sha256("\n".join(texts).encode() + str(vocab_size).encode()).hexdigest()[:16]
        path = Path(cache) / f"bpe{vocab_size}-{digest}.model" if cache else None
        if path is not None and path.exists():
            return cls(path.read_bytes())
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type="bpe",
            character_coverage=1.0, num_threads=1, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            max_sentence_length=4096, shuffle_input_sentence=False, minloglevel=2,
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(model.getvalue())
            tmp.replace(path)
        return cls(model.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        return self.sp.pad_id()

    def pieces(self, text: str) -> list[str]:
        _check_text(text)
        return self.sp.encode(text.lower(), out_type=str)

    def unknown_words(self, text: str) -> list[str]:
        """Words containing characters the model never saw (BPE splits unseen words into known pieces)."""
        _check_text(text)
        return [w for w in text.lower().split() if self.sp.unk_id() in self.sp.encode(w)]

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Piece ids; with `max_length`, truncated to that many ids."""
        _check_text(text)
        ids = self.sp.encode(text.lower())
        return ids[:max_length] if max_length is not None else ids

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([int(i) for i in ids])
