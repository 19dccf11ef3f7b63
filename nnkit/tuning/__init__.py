"""`nnkit tune`: hyperparameter search with KerasTuner over the keys a recipe declares.

Pipeline-level machinery (tasks never import it):

    space        the [tune] table: parse, check against the config schema, <-> KerasTuner values (no TF)
    search       KerasTuner oracle with nnkit's limits, and the trial: nnkit.train.fit + task.evaluate
                 on the validation view
    flow         the command: folder, resume, search, final run, default score
    results      trials.csv, search.png, report.md, summary.json
    distributed  KerasTuner's chief/worker mode; port 0 published in a file; local launcher
"""
