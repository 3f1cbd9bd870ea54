"""Was the model that scores a generator part of that generator's training?

gen-eval's exporter writes every network's weights fingerprint (``gen_eval.weights_fingerprint``) and,
on a generator, the classifiers its training used (``gen_eval.training_judges``: fingerprints of the
judge's classifier and features graphs, its loss terms, whether it picked this checkpoint). A score by
such a judge measures how well the generator learned to please it, not the images; the report says so
in a warning first in line. Models from elsewhere carry no record: the check says it cannot tell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gen_eval import contract
from gen_eval.errors import printable

IN_THE_LOSS = "in the loss"
PICKED_THE_CHECKPOINT = "picked this checkpoint"
SCORED_EPOCHS = "scored its epochs, in no loss"
ANOTHER_JUDGE = "no: the generator trained against another one"
CANNOT_TELL = "cannot tell"
NONE_RECORDED = "none recorded"


# whose word each verdict rests on: the files' own metadata, which anyone can write
RECORD_BASIS = (f"what the model files say about themselves (the generator's {contract.KEY_TRAINING_JUDGES}, the "
                f"scoring model's {contract.KEY_WEIGHTS_FINGERPRINT}); a model file can claim anything, and gen-eval "
                "does not check these claims against the weights")
NO_RECORD_BASIS = (f"the generator file records no judge ({contract.KEY_TRAINING_JUDGES} absent): the model file's "
                   "word (or silence), not checked against its weights; a model exported elsewhere records none")
MAX_TERMS_SHOWN = 8


@dataclass
class JudgeCheck:
    verdict: str
    warning: str | None = None
    basis: str = RECORD_BASIS  # whose word the verdict rests on


def recorded_judges(metadata: dict[str, str]) -> list[dict] | None:
    """The generator's record (a list of dicts), [] when it has none, None when the record is unreadable."""
    raw = metadata.get(contract.KEY_TRAINING_JUDGES)
    if raw is None:
        return []
    try:
        entries = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None
    return entries


def _shown(text: str) -> str:
    return printable(text)[:80]


def _terms(entry: dict) -> str:
    terms = entry.get("loss_terms")
    if not isinstance(terms, dict):
        return ""
    shown = [f"{_shown(str(k))}={v:g}" if isinstance(v, (int, float)) else _shown(str(k))
             for k, v in list(terms.items())[:MAX_TERMS_SHOWN]]
    more = len(terms) - MAX_TERMS_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def check_judge(generator, scorer, graph: str) -> JudgeCheck:
    """``scorer`` (a loaded classifier or features model; ``graph`` says which) against ``generator``'s record."""
    entries = recorded_judges(generator.info.metadata)
    if entries is None:
        return JudgeCheck(CANNOT_TELL, f"{generator.path}: its {contract.KEY_TRAINING_JUDGES} metadata is unreadable, "
                                       f"so whether {scorer.path} took part in its training cannot be checked")
    if not entries:
        return JudgeCheck(NONE_RECORDED, basis=NO_RECORD_BASIS)
    fingerprint = scorer.info.metadata.get(contract.KEY_WEIGHTS_FINGERPRINT)
    matched = [e for e in entries if fingerprint and e.get(graph) == fingerprint]
    in_loss = [e for e in matched if _terms(e)]
    if in_loss:
        return JudgeCheck(IN_THE_LOSS, (
            f"JUDGE IN THE LOSS: the generator file {generator.path} says it was trained against the judge whose "
            f"weights fingerprint {scorer.path} carries ({_terms(in_loss[0])}); this number measures how well the generator learned to please this judge, "
            "not how good its images are. Score it with a classifier that took no part in its training "
            "(e.g. a judge trained with another seed)"))
    if any(e.get("picked_this_checkpoint") for e in matched):
        return JudgeCheck(PICKED_THE_CHECKPOINT, (
            f"the generator file {generator.path} says {scorer.path} (by the weights fingerprint it carries) picked "
            "this checkpoint (the run's best epoch by its score), so this score is biased upward; score it with a classifier that took no part in its training"))
    if matched:
        return JudgeCheck(SCORED_EPOCHS)
    if not fingerprint and any(_terms(e) or e.get("picked_this_checkpoint") for e in entries):
        shaped = next(e for e in entries if _terms(e) or e.get("picked_this_checkpoint"))
        how = _terms(shaped) or "it picked the checkpoint"
        return JudgeCheck(CANNOT_TELL, (
            f"the generator file {generator.path} says it was trained against a judge "
            f"({_shown(str(shaped.get('file', '')))}: {how}) and "
            f"{scorer.path} carries no {contract.KEY_WEIGHTS_FINGERPRINT}, so whether it is that judge cannot be "
            "checked; export it with gen-eval to check"))
    return JudgeCheck(ANOTHER_JUDGE)


__all__ = ["JudgeCheck", "check_judge", "recorded_judges"]
