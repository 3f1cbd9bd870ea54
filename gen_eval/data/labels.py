"""Label spaces: the conditions a conditional model takes, and how names become vectors.

Three kinds (docs/contract.md):
- ``multilabel``: N names, a k-hot vector (iCLEVR: 24 names, ``objects.json`` maps name -> index);
- ``binary``: one attribute name (CelebA ``Smiling``), a vector of length 1;
- ``categorical``: named heads with one choice each (Cartoon Set: hair 6, eye 4, face 3, glasses 2),
  the concatenation of one one-hot vector per head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

KINDS = ("multilabel", "binary", "categorical")


@dataclass(frozen=True)
class LabelSpace:
    kind: str
    names: tuple[str, ...]
    heads: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown label space kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "categorical":
            flat = tuple(f"{head}:{value}" for head, values in self.heads for value in values)
            if not self.heads or any(len(values) < 2 for _, values in self.heads):
                raise ValueError("a categorical label space needs heads with at least 2 choices each")
            object.__setattr__(self, "names", flat)
        elif self.kind == "binary" and len(self.names) != 1:
            raise ValueError(f"a binary label space has exactly one attribute name, got {len(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("label names must be unique")
        if not self.names:
            raise ValueError("a label space needs at least one name")

    # -- builders -------------------------------------------------------------------------------
    @classmethod
    def multilabel(cls, names: Sequence[str]) -> "LabelSpace":
        return cls("multilabel", tuple(names))

    @classmethod
    def binary(cls, name: str) -> "LabelSpace":
        return cls("binary", (name,))

    @classmethod
    def categorical(cls, heads: Mapping[str, Sequence[str]]) -> "LabelSpace":
        return cls("categorical", (), tuple((h, tuple(v)) for h, v in heads.items()))

    @classmethod
    def from_objects(cls, mapping: Mapping[str, int]) -> "LabelSpace":
        """From an iCLEVR ``objects.json`` mapping (name -> index, indices 0..N-1)."""
        order = sorted(mapping.items(), key=lambda item: item[1])
        if [index for _, index in order] != list(range(len(order))):
            raise ValueError("objects.json indices must be 0..N-1, each used once")
        return cls.multilabel([name for name, _ in order])

    # -- properties -----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Length of the condition vector."""
        return len(self.names)

    @property
    def index(self) -> dict[str, int]:
        """name -> position; built once (a dict per lookup made long conditions quadratic)."""
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {name: i for i, name in enumerate(self.names)}
            object.__setattr__(self, "_index", cached)
        return cached

    def head_slices(self) -> list[tuple[str, slice]]:
        """For categorical spaces: each head's name and its slice of the condition vector."""
        out, start = [], 0
        for head, values in self.heads:
            out.append((head, slice(start, start + len(values))))
            start += len(values)
        return out

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, names: Sequence[str]) -> np.ndarray:
        """A k-hot float32 vector from label names (multilabel, binary, or 'head:value' names)."""
        vec = np.zeros(self.size, dtype=np.float32)
        index = self.index
        for name in names:
            if name not in index:
                raise KeyError(name)
            vec[index[name]] = 1.0
        return vec

    def validate_vector(self, vec: np.ndarray) -> str | None:
        """Return what is wrong with a condition vector, or None if it fits this space."""
        vec = np.asarray(vec)
        if vec.shape != (self.size,):
            return f"has {vec.shape[-1] if vec.ndim else 0} values, the label space has {self.size}"
        if not np.all((vec == 0) | (vec == 1)):
            return "has values other than 0 and 1"
        if self.kind == "multilabel" and vec.sum() < 1:
            return "has no label set"
        if self.kind == "categorical":
            for head, sl in self.head_slices():
                if vec[sl].sum() != 1:
                    return f"head {head!r} needs exactly one choice, has {int(vec[sl].sum())}"
        return None

    # -- JSON (the gen_eval.label_space metadata value) ----------------------------------------
    def to_dict(self) -> dict:
        if self.kind == "categorical":
            return {"kind": "categorical", "heads": {h: list(v) for h, v in self.heads}}
        return {"kind": self.kind, "names": list(self.names)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, obj: Mapping) -> "LabelSpace":
        if not isinstance(obj, Mapping) or "kind" not in obj:
            raise ValueError("a label space is a JSON object with a 'kind'")
        kind = obj["kind"]
        if kind == "categorical":
            heads = obj.get("heads")
            if not isinstance(heads, Mapping):
                raise ValueError("a categorical label space needs 'heads': {head: [choices]}")
            if not all(isinstance(h, str) and isinstance(vals, list) and all(isinstance(v, str) for v in vals)
                       for h, vals in heads.items()):
                raise ValueError("a categorical label space needs 'heads': {head: [choices as strings]}")
            return cls.categorical({h: list(vals) for h, vals in heads.items()})
        names = obj.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"a {kind} label space needs 'names': a list of strings")
        return cls(kind, tuple(names))

    @classmethod
    def from_json(cls, text: str) -> "LabelSpace":
        return cls.from_dict(json.loads(text))
