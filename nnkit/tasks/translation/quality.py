"""What the translate report shows beyond BLEU/chrF: unknown tokens, names and numbers kept, examples.

Kept apart from the task's contract (``translation.py``): these read
strings and token lists only, no model.
"""

from __future__ import annotations

from nnkit.datasets.names_numbers import CopyScore, copy_rate, substitute, target_words, to_keep


def unknown_rates(test_source_tokens: list[list[str]], source_vocab: list[str], mode: str) -> dict:
    """Share of test-source tokens the model cannot see (``[UNK]``); for subwords also the byte pieces."""
    from nnkit.datasets.subwords import byte_piece

    vocab = set(source_vocab)
    flat = [t for row in test_source_tokens for t in row]
    if not flat:
        return {}
    rates = {"unknown tokens in test sources": sum(t not in vocab for t in flat) / len(flat)}
    if mode == "subword":  # never [UNK]; a character unseen in training is spelt in UTF-8 bytes
        rates["byte pieces in test sources"] = sum(byte_piece(t) for t in flat) / len(flat)
    return rates


def copy_metrics(score: CopyScore) -> dict:
    return {"copy_rate": score.rate, "copy_rate_numbers": score.numbers, "copy_rate_names": score.names}


def names_numbers(train_pairs, sources, refs, systems: dict) -> tuple[dict, int, int]:
    """{system: copy metrics} for each system's outputs, the tokens to keep, and the sentences holding them."""
    known = target_words(t for _, t in train_pairs)
    scores = {name: copy_rate(sources, refs, outputs, known) for name, outputs in systems.items()}
    any_score = next(iter(scores.values()))
    return {name: copy_metrics(s) for name, s in scores.items()}, any_score.items, any_score.sentences


def probe(train_pairs, test_pairs, seed: int) -> tuple[list[tuple[str, str]], set[str]]:
    """Test pairs whose shared names/numbers are replaced by invented ones never seen in training.

    Returns the pairs and the training-target words (names among them do not count as to keep).
    """
    known = target_words(t for _, t in train_pairs)
    return substitute(test_pairs, seed * 1000 + 7919, avoid=known), known


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def example_tables(train_pairs, sources, refs, hyps, n: int, model_inputs=None) -> list[tuple[str, str]]:
    """(title, markdown) tables: best and worst test translations by sentence chrF, and names/numbers.

    ``model_inputs``: the sources as the model reads them (names/numbers as
    placeholders), shown beside the names/numbers when they differ.
    """
    import sacrebleu

    if not n or not sources:
        return []
    chrf = [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(hyps, refs)]
    order = sorted(range(len(sources)), key=lambda i: (-chrf[i], -len(sources[i]), i))
    header = "| source | reference | model | chrF |\n|---|---|---|---|\n"

    def rows(indices):
        return "\n".join(f"| {_md(sources[i])} | {_md(refs[i])} | {_md(hyps[i])} | {chrf[i]:.0f} |" for i in indices)

    long_enough = [i for i in order if len(sources[i].split()) >= 5] or order  # a one-word match says little
    tables = [("Best test translations (sentence chrF, sources of 5+ words)", header + rows(long_enough[:n // 2])),
              ("Worst test translations (sentence chrF)", header + rows(order[::-1][:n // 2]))]
    known = target_words(t for _, t in train_pairs)
    keep = [(i, to_keep(sources[i], refs[i], known)) for i in range(len(sources))]
    keep = [(i, k) for i, k in keep if k][:n]
    if keep:
        masked = model_inputs is not None and list(model_inputs) != list(sources)
        lines = [f"| {_md(sources[i])} | {_md(model_inputs[i]) + ' | ' if masked else ''}{_md(refs[i])} | "
                 f"{_md(hyps[i])} | {', '.join(k)} |" for i, k in keep]
        header = ("| source | model input | reference | model | to keep |\n|---|---|---|---|---|\n" if masked else
                  "| source | reference | model | to keep |\n|---|---|---|---|\n")
        tables.append(("Names and numbers (test sources holding tokens to keep)", header + "\n".join(lines)))
    return tables
