"""Recurrent networks: ReLU cells, normalisation, bidirectional reading."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.lessons.base import Lesson, Outcome, agreement, markdown_table
from nnkit.lessons.fitting import predict, rng
from nnkit.lessons.plots import figure, save

# -- rnn-relu ----------------------------------------------------------------------------------


def adding_data(gen, n: int, length: int):
    """The adding problem: random values, two of them marked; the target is their sum (Hochreiter 1997)."""
    values = gen.uniform(0, 1, (n, length))
    marks = np.zeros((n, length))
    first = gen.integers(0, length, n)
    second = (first + gen.integers(1, length, n)) % length
    marks[np.arange(n), first] = 1
    marks[np.arange(n), second] = 1
    x = np.stack([values, marks], axis=-1).astype("float32")
    return x, (values * marks).sum(1, keepdims=True).astype("float32")


def recurrent_gradient_norm(model, x, y) -> float:
    """||d(MSE)/d(recurrent kernel)|| on one batch: a measurement, no update."""
    import tensorflow as tf

    kernel = model.get_layer("rnn_simple1").cell.recurrent_kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x, training=False) - y) ** 2)
    value = float(tf.norm(tape.gradient(loss, kernel)))
    return value if np.isfinite(value) else float("inf")


def gradient_probe(x, y):
    """A callback that records the recurrent gradient norm on a fixed batch at every epoch end."""
    import keras

    class _Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.norms = [recurrent_gradient_norm(self.model, x, y)]

        def on_epoch_end(self, epoch, logs=None):
            self.norms.append(recurrent_gradient_norm(self.model, x, y))

    return _Probe()


VARIANTS = {"tanh": ("tanh", 0.0), "relu": ("relu", 0.0), "relu + clipnorm": ("relu", 1.0)}


def rnn_relu_experiment(ctx) -> Outcome:
    import keras

    from nnkit.builders import build_rnn

    lengths = list(ctx["lengths"])
    results, rows, agree, curves = {}, [], [], {}
    for seed in ctx.seeds:
        gen = rng(ctx, "adding", seed)
        x, y = adding_data(gen, ctx["samples"], ctx["length"])
        probes = {L: adding_data(gen, 128, L) for L in sorted(set(lengths) | {ctx["length"]})}
        for name, (act, clip) in VARIANTS.items():
            def build(act=act):
                return build_rnn((None, 2), 1, cell="simple", units=ctx["units"], cell_activation=act)
            keras.utils.set_random_seed(seed)
            initial = build()
            at_init = {L: recurrent_gradient_norm(initial, *probes[L]) for L in lengths}
            probe = gradient_probe(*probes[ctx["length"]])
            fitted = ctx.fit(f"{name.replace(' + ', '-')}-s{seed}", build, (x, y), loss="mse", seed=seed,
                             callbacks=[probe],
                             train={"epochs": ctx["epochs"], "batch_size": 32, "optimizer": "sgd", "momentum": 0.9,
                                    "learning_rate": ctx["learning_rate"], "clipnorm": clip})
            losses = fitted.curve("loss")
            trained = {L: recurrent_gradient_norm(fitted.model, *probes[L]) for L in lengths}
            results[(name, seed)] = {"init": at_init, "trained": trained, "max_grad": max(probe.norms),
                                     "final_loss": losses[-1], "nan": not np.isfinite(losses[-1])}
            curves[(name, seed)] = (probe.norms, losses)
            rows.append([seed, name, at_init[lengths[-1]], results[(name, seed)]["max_grad"], trained[lengths[-1]],
                         losses[-1]])
        tanh, relu, clipped = (results[(n, seed)] for n in VARIANTS)
        explodes = relu["nan"] or relu["max_grad"] >= ctx["factor"] * tanh["max_grad"]
        agree.append(explodes and not clipped["nan"])
    ok, total = agreement(agree)
    held = ok * 2 > total
    mean = {n: {"max_grad": float(np.mean([results[(n, s)]["max_grad"] for s in ctx.seeds])),
                "final_loss": float(np.mean([results[(n, s)]["final_loss"] for s in ctx.seeds])),
                "diverged_seeds": int(sum(results[(n, s)]["nan"] for s in ctx.seeds))} for n in VARIANTS}
    # the median over seeds: one seed's ratio can be 1e4 where the others are near 1
    growth = {n: float(np.median([results[(n, s)]["trained"][lengths[-1]] / results[(n, s)]["trained"][lengths[0]]
                                  for s in ctx.seeds])) for n in VARIANTS}
    _draw_relu(ctx, results, curves, lengths)
    verdict = (f"Training a SimpleRNN on the adding problem ({ctx['length']} steps, SGD + momentum), the largest "
               f"recurrent gradient norm was {mean['relu']['max_grad']:.3g} with ReLU vs "
               f"{mean['tanh']['max_grad']:.3g} "
               f"with tanh (diverged: ReLU in {mean['relu']['diverged_seeds']}, tanh in "
               f"{mean['tanh']['diverged_seeds']}, clipped ReLU in {mean['relu + clipnorm']['diverged_seeds']} of "
               f"{total} seeds); ReLU's gradient was at least {ctx['factor']:g} times "
               f"tanh's or it diverged, while the clipped ReLU stayed finite, in {ok} of {total} seeds. After training "
               f"the gradient changed by a factor of {growth['relu']:.3g} (median over seeds) from {lengths[0]} to "
               f"{lengths[-1]} steps with ReLU "
               f"({growth['tanh']:.3g} with tanh).")
    table = markdown_table(["seed", "variant", f"grad norm at init ({lengths[-1]} steps)",
                            "largest grad norm in training", f"grad norm trained ({lengths[-1]} steps)", "final loss"],
                           rows)
    return Outcome(held, verdict, {"mean": mean, "growth_with_length_trained": growth, "seeds_agreeing": ok,
                                   "seeds": total,
                                   "runs": {f"{n}/seed{s}": {k: (v if not isinstance(v, dict) else
                                                                 {str(a): b for a, b in v.items()})
                                                             for k, v in r.items()}
                                            for (n, s), r in results.items()}},
                   [("Recurrent-kernel gradient norms and loss (adding problem; predicting 1.0 scores ~0.17)", table)],
                   ["At initialisation Keras's orthogonal recurrent kernel keeps both cells' gradients moderate: the "
                    "explosion appears once training has grown the recurrent weights.",
                    "Plain SGD with momentum: Adam's normalised steps hide exploding gradients from the loss.",
                    f"Held: in most seeds, ReLU's largest gradient at least {ctx['factor']:g} times tanh's (or NaN), "
                    "and the clipped ReLU finite."])


def _draw_relu(ctx, results, curves, lengths) -> None:
    fig, axes = figure(ncols=3, width=4.4)
    colours = dict(zip(VARIANTS, ("tab:blue", "tab:red", "tab:green")))
    for (name, seed), (norms, losses) in curves.items():
        first = seed == ctx.seed
        axes[0][0].semilogy(range(len(norms)), np.clip(norms, 1e-6, 1e12), "o-", ms=3, color=colours[name],
                            alpha=1 if first else 0.4, label=name if first else None)
        axes[0][1].semilogy(range(1, len(losses) + 1), np.clip(np.nan_to_num(losses, nan=1e12), 1e-4, 1e12),
                            color=colours[name], alpha=1 if first else 0.4, label=name if first else None)
        trained = results[(name, seed)]["trained"]
        axes[0][2].loglog(lengths, np.clip([trained[L] for L in lengths], 1e-6, 1e12), "o-", color=colours[name],
                          alpha=1 if first else 0.4, label=name if first else None)
    for ax, xlabel, ylabel, title in (
            (axes[0][0], "epoch", "recurrent gradient norm", "during training"),
            (axes[0][1], "epoch", "training loss (MSE; NaN drawn at the top)", "loss"),
            (axes[0][2], "sequence length", "recurrent gradient norm", "after training, vs length")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
    save(ctx, fig, "relu_rnn", "SimpleRNN: tanh vs ReLU")


RNN_RELU = Lesson(
    name="rnn-relu",
    claim="ReLU in an RNN makes gradients explode (the same weights act many times).",
    setup="The adding problem (two marked values among `length` random ones; predict their sum). "
          "`build_rnn(cell='simple', cell_activation=A)` for tanh and relu, and relu with `train.clipnorm=1`, "
          "trained by SGD + momentum. The recurrent kernel's gradient norm is measured with a GradientTape on a "
          "fixed batch at initialisation, after every epoch (a callback) and, after training, for several "
          "sequence lengths.",
    options={"length": Field(50, "sequence length for training", min=2),
             "lengths": Field([10, 50, 100, 200], "lengths at which gradients are measured", min=2),
             "samples": Field(2000, "training sequences", min=10), "epochs": Field(8, "epochs", min=1),
             "units": Field(32, "recurrent units", min=1),
             "learning_rate": Field(0.05, "SGD learning rate", min=0.0, type=float),
             "seeds": Field(3, "seeds", min=1),
             "factor": Field(10.0, "how far ReLU's largest gradient must exceed tanh's", min=1.0, type=float)},
    quick={"samples": 500, "epochs": 3, "seeds": 1, "lengths": [10, 50]},
    experiment=rnn_relu_experiment,
    seconds=75,  # CPU s of the default run in docs/lessons.md
)

# -- norm-in-rnn -------------------------------------------------------------------------------

NORMS = ("none", "batch", "layer")


def variable_length_data(gen, n: int, min_len: int, max_len: int):
    """Sequences of 5..max_len noisy values, zero-padded at the end; label: is their mean above zero?

    Padding steps are all-zero vectors, which ``build_rnn(masking=True)`` skips.
    """
    lengths = gen.integers(min_len, max_len + 1, n)
    x = np.zeros((n, max_len, 2), dtype="float32")
    drift = gen.choice([-0.3, 0.3], n)
    for i, length in enumerate(lengths):
        x[i, :length, 0] = drift[i] + gen.normal(0, 1, length)
        x[i, :length, 1] = 1.0  # a constant channel: a real step is never all zeros
    y = (np.array([x[i, :L, 0].mean() for i, L in enumerate(lengths)]) > 0).astype("int32")
    return x, y


def norm_experiment(ctx) -> Outcome:
    from nnkit.builders import build_rnn

    results, rows, agree = {}, [], []
    for seed in ctx.seeds:
        gen = rng(ctx, "lengths", seed)
        train = variable_length_data(gen, ctx["samples"], 5, ctx["max_len"])
        xt, yt = variable_length_data(gen, 500, 5, ctx["max_len"])
        for norm in NORMS:
            fitted = ctx.fit(f"{norm}-s{seed}", lambda norm=norm: build_rnn(
                (ctx["max_len"], 2), 2, cell="gru", units=ctx["units"], depth=2, norm=norm, masking=True,
                output_activation="softmax"), train, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                seed=seed, train={"epochs": ctx["epochs"], "batch_size": 32, "learning_rate": 3e-3})
            model = fitted.model
            inference = predict(model, xt)
            single_inference = np.concatenate([np.asarray(model(xt[i:i + 1], training=False))
                                               for i in range(ctx["single"])])
            # training-mode calls normalise with the batch's own statistics, and also move batch norm's
            # moving averages: measured last, then the trained weights are put back
            trained = model.get_weights()
            batch_train_mode = np.asarray(model(xt, training=True))
            single_train_mode = np.concatenate([np.asarray(model(xt[i:i + 1], training=True))
                                                for i in range(ctx["single"])])
            model.set_weights(trained)
            results[(norm, seed)] = r = {
                "accuracy": float(np.mean(inference.argmax(1) == yt)),
                "train_vs_inference": float(np.mean(np.abs(batch_train_mode - inference)[:, 1])),
                "batch1_train_mode_accuracy": float(np.mean(single_train_mode.argmax(1) == yt[:ctx["single"]])),
                "batch1_vs_batched_inference": float(np.max(np.abs(single_inference - inference[:ctx["single"]]))),
            }
            rows.append([seed, norm, r["accuracy"], r["train_vs_inference"], r["batch1_train_mode_accuracy"],
                         r["batch1_vs_batched_inference"]])
        batch, layer = results[("batch", seed)], results[("layer", seed)]
        agree.append(layer["accuracy"] >= batch["accuracy"] - ctx["tolerance"]
                     and batch["train_vs_inference"] > 10 * layer["train_vs_inference"] + 1e-3)
    ok, total = agreement(agree)
    held = ok * 2 > total
    mean = {n: {k: float(np.mean([results[(n, s)][k] for s in ctx.seeds])) for k in results[(n, ctx.seed)]}
            for n in NORMS}
    _draw_norm(ctx, mean)
    verdict = (f"On variable-length sequences (5 to {ctx['max_len']} steps, masked padding), test accuracy was "
               f"{mean['batch']['accuracy']:.3f} with batch norm, {mean['layer']['accuracy']:.3f} with layer norm and "
               f"{mean['none']['accuracy']:.3f} with none; batch norm's outputs moved by "
               f"{mean['batch']['train_vs_inference']:.3f} (mean |Δp|) between training and inference mode against "
               f"{mean['layer']['train_vs_inference']:.1e} for layer norm, and one sequence alone in training mode "
               f"scored {mean['batch']['batch1_train_mode_accuracy']:.2f} with batch norm vs "
               f"{mean['layer']['batch1_train_mode_accuracy']:.2f}; layer norm at least as accurate (within "
               f"{ctx['tolerance']:.2f}) with a mismatch 10 times smaller in {ok} of {total} seeds.")
    table = markdown_table(["seed", "norm", "test accuracy", "train- vs inference-mode |Δp|",
                            "batch of 1, training mode: accuracy", "batch of 1 vs batched, inference: max |Δp|"], rows)
    return Outcome(held, verdict, {"mean": mean, "seeds_agreeing": ok, "seeds": total,
                                   "runs": {f"{n}/seed{s}": r for (n, s), r in results.items()}},
                   [("Two stacked GRUs with a norm after each", table)],
                   ["`build_rnn(norm=...)` normalises each recurrent layer's outputs, between layers, not inside "
                    "the cell's recurrence (as layer-normalised LSTMs do); batch norm's statistics pool every "
                    "unmasked step of every sequence in the batch.",
                    "In inference mode batch norm uses its moving averages, so batch size does not matter there "
                    "(last column); the mismatch is between the statistics seen in training and those averages, "
                    "and it grows when sequences of a batch differ in length.",
                    "Training mode with a batch of one is what a streaming model would face if it kept batch "
                    "statistics on; Keras never does that at inference."])


def _draw_norm(ctx, mean) -> None:
    fig, axes = figure(ncols=3, width=4.2)
    positions = np.arange(len(NORMS))
    colours = ["grey", "tab:red", "tab:blue"]
    for ax, key, ylabel, low in (
            (axes[0][0], "accuracy", "test accuracy (inference mode)", 0.4),
            (axes[0][1], "train_vs_inference", "mean |p(training mode) - p(inference mode)|", None),
            (axes[0][2], "batch1_train_mode_accuracy", "accuracy, one sequence per batch, training mode", 0.0)):
        ax.bar(positions, [mean[n][key] for n in NORMS], color=colours)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_xticks(positions, ["no norm", "batch norm", "layer norm"])
        if low is not None:
            ax.set_ylim(low, 1.0)
    save(ctx, fig, "norms", "Normalisation in a recurrent model (variable-length, masked sequences)")


NORM_IN_RNN = Lesson(
    name="norm-in-rnn",
    claim="Batch normalisation does not suit RNNs; layer normalisation does.",
    setup="Variable-length sequences (zero-padded, masked): is the mean of the values above zero? "
          "`build_rnn(cell='gru', depth=2, norm=N, masking=True)` for N in none, batch, layer. Measured: test "
          "accuracy; how far outputs move between training mode (batch statistics) and inference mode (moving "
          "averages); a batch of one sequence in training mode; batch of one vs batched in inference mode. Held "
          "when, in most seeds, layer norm is at least as accurate as batch norm (within `tolerance`) and batch "
          "norm's train/inference mismatch is over 10 times layer norm's.",
    options={"max_len": Field(30, "longest sequence", min=6), "samples": Field(1000, "training sequences", min=10),
             "epochs": Field(6, "epochs", min=1), "units": Field(32, "recurrent units", min=1),
             "single": Field(50, "test sequences also run one at a time", min=1),
             "seeds": Field(2, "seeds", min=1),
             "tolerance": Field(0.02, "accuracy gap still counted as equal", min=0.0, type=float)},
    quick={"max_len": 16, "samples": 300, "epochs": 2, "single": 8, "seeds": 1},
    experiment=norm_experiment,
    seconds=303,  # CPU s of the default run in docs/lessons.md
)

# -- bidirectional ---------------------------------------------------------------------------------


def shifted_labels(gen, n: int, length: int, shift: int, symbols: int = 4):
    """Per-step labels: the symbol ``shift`` steps later (``shift`` > 0, the future) or earlier (< 0).

    Where that step is outside the sequence the label is the current symbol.
    """
    tokens = gen.integers(0, symbols, (n, length))
    labels = tokens.copy()
    if shift > 0:
        labels[:, :-shift] = tokens[:, shift:]
    elif shift < 0:
        labels[:, -shift:] = tokens[:, :shift]
    return np.eye(symbols, dtype="float32")[tokens], labels.astype("int32")


def bidirectional_experiment(ctx) -> Outcome:
    from nnkit.builders import build_rnn

    shift, length = ctx["shift"], ctx["length"]
    results, rows, agree = {}, [], []
    inner = slice(shift, length - shift)  # steps whose label is truly another step's symbol
    for seed in ctx.seeds:
        for task, s in (("future", shift), ("past", -shift)):
            gen = rng(ctx, task, seed)
            train, (xt, yt) = shifted_labels(gen, ctx["samples"], length, s), shifted_labels(gen, 500, length, s)
            for bi in (False, True):
                name = "bidirectional" if bi else "forward only"
                fitted = ctx.fit(f"{task}-{'bi' if bi else 'uni'}-s{seed}", lambda bi=bi: build_rnn(
                    (length, 4), 4, cell="gru", units=ctx["units"], bidirectional=bi, head="sequence",
                    output_activation="softmax"), train, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    seed=seed, train={"epochs": ctx["epochs"], "batch_size": 32, "learning_rate": 5e-3})
                p = predict(fitted.model, xt).argmax(-1)
                results[(task, name, seed)] = float(np.mean(p[:, inner] == yt[:, inner]))
                rows.append([seed, task, name, results[(task, name, seed)]])
        gap = results[("future", "bidirectional", seed)] - results[("future", "forward only", seed)]
        agree.append(gap >= ctx["margin"])
    ok, total = agreement(agree)
    held = ok * 2 > total
    mean = {f"{t}/{n}": float(np.mean([results[(t, n, s)] for s in ctx.seeds]))
            for t in ("future", "past") for n in ("forward only", "bidirectional")}
    _draw_bi(ctx, mean)
    verdict = (f"Labelling each step with the symbol {shift} steps later, a forward GRU scored "
               f"{mean['future/forward only']:.3f} (chance 0.25) and a bidirectional one "
               f"{mean['future/bidirectional']:.3f}; with the symbol {shift} steps earlier both could: "
               f"{mean['past/forward only']:.3f} and {mean['past/bidirectional']:.3f}. Bidirectional was ahead by at "
               f"least {ctx['margin']:.2f} on the future task in {ok} of {total} seeds.")
    table = markdown_table(["seed", "label depends on", "model", "per-step accuracy"], rows)
    return Outcome(held, verdict, {"accuracy": mean, "seeds_agreeing": ok, "seeds": total},
                   [("Per-step test accuracy (steps whose label is another step's symbol)", table)],
                   ["A bidirectional model needs the whole sequence before its first output: right for offline "
                    "labelling, wrong for a per-step decision that must be made as data arrives.",
                    "The forward model on the future task is at chance by construction: the label is independent of "
                    "everything it has seen."])


def _draw_bi(ctx, mean) -> None:
    fig, axes = figure()
    ax = axes[0][0]
    positions = np.arange(2)
    for i, name in enumerate(("forward only", "bidirectional")):
        ax.bar(positions + (i - 0.5) * 0.38, [mean[f"future/{name}"], mean[f"past/{name}"]], 0.38, label=name)
    ax.axhline(0.25, color="grey", ls=":", label="chance")
    ax.set_xticks(positions, [f"label = symbol {ctx['shift']} steps later", f"{ctx['shift']} steps earlier"])
    ax.set_ylabel("per-step test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    save(ctx, fig, "bidirectional", "Outputs that depend on what comes later")


BIDIRECTIONAL = Lesson(
    name="bidirectional",
    claim="Some outputs depend on what comes later; a bidirectional RNN sees both sides.",
    setup="Sequences of random symbols; each step's label is the symbol `shift` steps later (the future task) "
          "or earlier (the control). `build_rnn(cell='gru', head='sequence', bidirectional=B)` for B false and "
          "true. Held when, in most seeds, the bidirectional model beats the forward one by at least `margin` on "
          "the future task.",
    options={"length": Field(20, "steps per sequence", min=4), "shift": Field(2, "how far the label looks", min=1),
             "samples": Field(1500, "training sequences", min=10), "epochs": Field(8, "epochs", min=1),
             "units": Field(32, "recurrent units", min=1), "seeds": Field(2, "seeds", min=1),
             "margin": Field(0.3, "accuracy the bidirectional model must add", min=0.0, type=float)},
    quick={"length": 12, "samples": 300, "epochs": 3, "seeds": 1},
    experiment=bidirectional_experiment,
    seconds=74,  # CPU s of the default run in docs/lessons.md
)
