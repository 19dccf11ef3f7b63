"""Translation, one file per role.

``task``: the TranslationTask (data, vocabularies, evaluation, baselines);
``tokens``: strings to tokens and back in the graph; ``decoding``: greedy and
beam search over a seq2seq model; ``serving``: the exported translator;
``plots``: attention heatmaps; ``quality``: unknown-token rate, names/numbers
copy rate and example tables for the report. Subword tokens themselves are
``nnkit.datasets.subwords``. The model itself is ``nnkit.builders.build_seq2seq``.
"""
