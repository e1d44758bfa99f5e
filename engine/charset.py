"""The characters a model reads, learned from the data and stored with the model."""
from __future__ import annotations

from typing import Iterable

PAD, GO, EOS = 0, 1, 2
N_SPECIAL = 3


class Charset:
    """Maps text to decoder token ids (0 pad, 1 go, 2 end, then one id per character) and back."""

    def __init__(self, chars: str):
        ordered = sorted(set(chars))
        self.chars = "".join(ordered)
        self._index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> "Charset":
        return cls("".join(set("".join(labels))))

    @property
    def num_chars(self) -> int:
        return len(self.chars)

    @property
    def vocab_size(self) -> int:
        """Decoder vocabulary: the characters plus pad, go and end."""
        return len(self.chars) + N_SPECIAL

    def knows(self, text: str) -> bool:
        return all(c in self._index for c in text)

    def char_ids(self, text: str) -> list[int]:
        """0-based character indices (the CTC head's labels); unknown characters are dropped."""
        return [self._index[c] for c in text if c in self._index]

    def encode(self, text: str) -> list[int]:
        """Decoder token ids for `text`, without go/end."""
        return [i + N_SPECIAL for i in self.char_ids(text)]

    def decode(self, token_ids: Iterable[int]) -> str:
        """Text from decoder token ids, stopping at the first end token."""
        out = []
        for t in token_ids:
            t = int(t)
            if t == EOS:
                break
            if t >= N_SPECIAL:
                out.append(self.chars[t - N_SPECIAL])
        return "".join(out)
