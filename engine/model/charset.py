"""The characters a model reads, stored with the model; token 0 is "end", token i is chars[i - 1].

The order is kept as given: a model started from another keeps that model's characters at their
places and gets new ones appended, so its trained output rows still mean the same characters.
"""
from __future__ import annotations

from typing import Iterable, Sequence

END = 0


class Charset:
    def __init__(self, chars: str):
        ordered = "".join(dict.fromkeys(chars))  # unique, first occurrence wins
        self.chars = ordered
        self._index = {c: i + 1 for i, c in enumerate(ordered)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> "Charset":
        return cls("".join(sorted(set("".join(labels)))))

    def extended(self, labels: Iterable[str]) -> "Charset":
        """This charset plus the characters of `labels` it does not know (appended, sorted)."""
        new = sorted({c for text in labels for c in text if c not in self._index})
        return Charset(self.chars + "".join(new))

    @property
    def vocab_size(self) -> int:
        """Output classes: "end" plus one per character."""
        return len(self.chars) + 1

    def knows(self, text: str) -> bool:
        return all(c in self._index for c in text)

    def unknown(self, texts: Iterable[str]) -> str:
        return "".join(sorted({c for t in texts for c in t if c not in self._index}))

    def encode(self, text: str, slots: int) -> list[int]:
        """Tokens for `text` padded with "end" to `slots` (unknown characters are dropped)."""
        tokens = [self._index[c] for c in text if c in self._index][: slots - 1]
        return tokens + [END] * (slots - len(tokens))

    def decode(self, tokens: Sequence[int], length: int | None = None) -> str:
        """Text of `tokens[:length]` (length: the model's count of characters before the first end)."""
        if length is None:
            length = next((i for i, t in enumerate(tokens) if int(t) == END), len(tokens))
        return "".join(self.chars[int(t) - 1] for t in tokens[:length] if 0 < int(t) <= len(self.chars))
