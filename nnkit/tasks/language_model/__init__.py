"""Language models, one file per role.

``task``: the LanguageModelTask (data, evaluation against n-gram baselines);
``tokens``: reserved tokens, vocabulary, start tokens; ``serving``: the
exported generator; ``melody``: music21 rendering (MIDI, MusicXML, piano roll).
"""
