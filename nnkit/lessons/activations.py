"""Activations in deep MLPs: vanishing gradients, and dying ReLUs."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.lessons.base import Lesson, Outcome, agreement, markdown_table
from nnkit.lessons.fitting import load_digits_arrays, predict
from nnkit.lessons.plots import figure, save

ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "rrelu")
COLOURS = {"sigmoid": "tab:red", "relu": "tab:blue", "leaky_relu": "tab:green", "rrelu": "tab:purple"}


def _dense_layers(model, depth: int) -> list:
    return [model.get_layer(f"mlp_block{i + 1}_dense") for i in range(depth)]


def gradient_norms(model, x, y, depth: int) -> list:
    """Norm of d(loss)/d(kernel) for each hidden dense layer, first to last (a measurement, not a step)."""
    import keras
    import tensorflow as tf

    kernels = [layer.kernel for layer in _dense_layers(model, depth)]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]


# -- vanishing gradients -----------------------------------------------------------------------


def vanishing_experiment(ctx) -> Outcome:
    import keras

    from nnkit.builders import build_mlp

    x, y = load_digits_arrays()
    depth, probe = ctx["depth"], slice(0, 512)
    norms, losses, rows, agree = {}, {}, [], []
    for seed in ctx.seeds:
        for act in ACTIVATIONS:
            def build(act=act):
                return build_mlp((64,), 10, depth=depth, width=ctx["width"], activation=act)
            keras.utils.set_random_seed(seed)  # the same initial draw the fit below starts from
            norms[(act, seed)] = gradient_norms(build(), x[probe], y[probe], depth)
            fitted = ctx.fit(f"{act}-s{seed}", build, (x, y), loss="sparse_categorical_crossentropy",
                             metrics=["accuracy"], seed=seed,
                             train={"epochs": ctx["epochs"], "batch_size": 64, "optimizer": "sgd",
                                    "momentum": 0.9, "learning_rate": ctx["learning_rate"]})
            losses[(act, seed)] = fitted.curve("loss")
        first = {a: norms[(a, seed)][0] for a in ACTIVATIONS}
        ratio = {a: norms[(a, seed)][0] / norms[(a, seed)][-1] for a in ACTIVATIONS}
        agree.append(first["sigmoid"] * ctx["factor"] <= min(first[a] for a in ACTIVATIONS if a != "sigmoid"))
        for a in ACTIVATIONS:
            rows.append([seed, a, first[a], norms[(a, seed)][-1], ratio[a], losses[(a, seed)][0],
                         losses[(a, seed)][-1]])
    ok, total = agreement(agree)
    mean_first = {a: float(np.mean([norms[(a, s)][0] for s in ctx.seeds])) for a in ACTIVATIONS}
    mean_ratio = {a: float(np.mean([norms[(a, s)][0] / norms[(a, s)][-1] for s in ctx.seeds]))
                  for a in ACTIVATIONS}
    final_loss = {a: float(np.mean([losses[(a, s)][-1] for s in ctx.seeds])) for a in ACTIVATIONS}
    trains = final_loss["sigmoid"] > max(final_loss[a] for a in ACTIVATIONS if a != "sigmoid")
    held = ok == total and trains
    _draw(ctx, norms, losses)
    verdict = (f"In a {depth}-layer MLP at initialisation the sigmoid's first-layer gradient norm was at least "
               f"{ctx['factor']:g} times below every ReLU variant's in {ok} of {total} seeds (mean "
               f"{mean_first['sigmoid']:.2g} vs ReLU {mean_first['relu']:.2g}; first/last-layer ratio "
               f"{mean_ratio['sigmoid']:.2g} vs {mean_ratio['relu']:.2g}), and after {ctx['epochs']} epochs its "
               f"training loss was {final_loss['sigmoid']:.3f} against {final_loss['relu']:.3f} for ReLU "
               f"({'higher' if trains else 'not higher'} than every ReLU variant).")
    table = markdown_table(["seed", "activation", "grad norm, layer 1", f"grad norm, layer {depth}",
                            "first / last", "loss, epoch 1", f"loss, epoch {ctx['epochs']}"], rows)
    return Outcome(held, verdict, {"first_layer_grad_norm": mean_first, "first_over_last": mean_ratio,
                                   "final_train_loss": final_loss, "seeds_agreeing": ok, "seeds": total,
                                   "per_layer": {f"{a}/seed{s}": v for (a, s), v in norms.items()}},
                   [("Gradient norms at initialisation and training loss", table)],
                   ["Keras's default Glorot-uniform initialisation for every activation; He initialisation "
                    "would help ReLU further, and sigmoid with a careful initialisation vanishes less.",
                    "Plain SGD with momentum: Adam or RMSprop rescale each weight's step and hide much of the "
                    "vanishing gradient in the loss curve, though not in the gradient norms."])


def _draw(ctx, norms, losses) -> None:
    fig, axes = figure(ncols=2, width=5.2)
    ax = axes[0][0]
    for (act, seed), values in norms.items():
        ax.semilogy(range(1, len(values) + 1), values, "o-", ms=3, color=COLOURS[act],
                    label=act if seed == ctx.seed else None, alpha=1.0 if seed == ctx.seed else 0.4)
    ax.set_xlabel("hidden layer (1 = next to the input)")
    ax.set_ylabel("gradient norm at initialisation")
    ax.legend()
    ax = axes[0][1]
    for (act, seed), curve in losses.items():
        ax.plot(range(1, len(curve) + 1), curve, color=COLOURS[act], label=act if seed == ctx.seed else None,
                alpha=1.0 if seed == ctx.seed else 0.4)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend()
    save(ctx, fig, "gradients", f"{ctx['depth']}-layer MLP on digits")


VANISHING_GRADIENTS = Lesson(
    name="vanishing-gradients",
    claim="Sigmoid makes gradients vanish in deep networks; ReLU fixes it.",
    setup="`build_mlp(depth=D, width=W, activation=A)` on scikit-learn's 8x8 digits (standardised), for A in "
          "sigmoid, relu, leaky_relu, rrelu. Per-layer gradient norms of the loss at initialisation are measured "
          "with a GradientTape (no update), then each variant is trained with SGD + momentum. Held when, for every "
          "seed, the sigmoid's first-layer gradient norm is at least `factor` times smaller than every ReLU "
          "variant's, and its training loss ends highest.",
    options={"depth": Field(15, "hidden layers", min=2), "width": Field(32, "units per layer", min=1),
             "epochs": Field(10, "training epochs per variant", min=1),
             "learning_rate": Field(0.01, "SGD learning rate", min=0.0, type=float),
             "seeds": Field(3, "seeds", min=1),
             "factor": Field(100.0, "how far below ReLU's the sigmoid's first-layer norm must be", min=1.0,
                             type=float)},
    quick={"depth": 10, "epochs": 2, "seeds": 1},
    experiment=vanishing_experiment,
    seconds=74,  # CPU s of the default run in docs/lessons.md
)

# -- dying ReLU ----------------------------------------------------------------------------------


def unit_census(model, x, depth: int) -> dict:
    """Per hidden unit: share of samples where its pre-activation is positive."""
    import keras

    outputs = [layer.output for layer in _dense_layers(model, depth)]
    probe = keras.Model(model.inputs, outputs)
    pre = predict(probe, x) if depth == 1 else [np.asarray(p) for p in probe(x, training=False)]
    pre = [pre] if depth == 1 else pre
    if not all(np.isfinite(p).all() for p in pre):  # the weights blew up: nothing to count
        return {"dormant": float("nan"), "zero_share": float("nan"), "diverged": True}
    positive = np.concatenate([(p > 0).mean(axis=0) for p in pre])
    return {"dormant": float(np.mean(positive == 0)),  # never positive on any sample
            "zero_share": float(1.0 - positive.mean()),  # share of (sample, unit) pairs at or below zero
            "diverged": False}


def dying_experiment(ctx) -> Outcome:
    from nnkit.builders import build_mlp

    x, y = load_digits_arrays()
    depth, rates = ctx["depth"], {"small": ctx["small_rate"], "large": ctx["large_rate"]}
    census, acc, rows, agree = {}, {}, [], []
    for seed in ctx.seeds:
        for act in ACTIVATIONS:
            for regime, lr in rates.items():
                fitted = ctx.fit(f"{act}-{regime}-s{seed}",
                                 lambda act=act: build_mlp((64,), 10, depth=depth, width=ctx["width"], activation=act),
                                 (x, y), loss="sparse_categorical_crossentropy", metrics=["accuracy"], seed=seed,
                                 train={"epochs": ctx["epochs"], "batch_size": 32, "optimizer": "sgd",
                                        "momentum": ctx["momentum"], "learning_rate": lr})
                census[(act, regime, seed)] = unit_census(fitted.model, x, depth)
                acc[(act, regime, seed)] = fitted.last("accuracy")
                rows.append([seed, act, lr, census[(act, regime, seed)]["dormant"],
                             census[(act, regime, seed)]["zero_share"], acc[(act, regime, seed)]])
        dead = {a: census[(a, "large", seed)]["dormant"] for a in ACTIVATIONS}
        # a leaky variant that diverged kept nothing alive: the comparison fails for that seed (NaN compares False)
        agree.append(dead["relu"] >= ctx["min_dead"]
                     and dead["relu"] >= 2 * max(dead["leaky_relu"], dead["rrelu"]))
    ok, total = agreement(agree)
    mean = {f"{a}/{r}": {k: float(np.nanmean([census[(a, r, s)][k] for s in ctx.seeds]))
                         if any(not census[(a, r, s)]["diverged"] for s in ctx.seeds) else float("nan")
                         for k in ("dormant", "zero_share")} for a in ACTIVATIONS for r in rates}
    diverged = {f"{a}/{r}": sum(census[(a, r, s)]["diverged"] for s in ctx.seeds) for a in ACTIVATIONS for r in rates}
    sparse = mean["relu/small"]["zero_share"]
    held = ok * 2 > total and sparse >= 0.3
    _draw_census(ctx, mean, rates)
    def share(key):
        value = mean[key]["dormant"]
        return "-- (diverged)" if not np.isfinite(value) else f"{value:.0%}"

    verdict = (f"With SGD at learning rate {rates['large']:g}, ReLU left {share('relu/large')} of its "
               f"hidden units never active on the data, leaky ReLU {share('leaky_relu/large')} and "
               f"RReLU {share('rrelu/large')} (at {rates['small']:g}: ReLU "
               f"{share('relu/small')}); ReLU had at least {ctx['min_dead']:.0%} dead and twice the "
               f"leaky variants' share in {ok} of {total} seeds; at the small rate {sparse:.0%} of ReLU activations "
               f"were exactly zero (sparsity)." + _diverged_words(diverged, len(ctx.seeds)))
    table = markdown_table(["seed", "activation", "learning rate", "units never active", "zero / negative share",
                            "train accuracy"], rows)
    return Outcome(held, verdict, {"mean": mean, "seeds_agreeing": ok, "seeds": total, "diverged": diverged,
                                   "runs": {f"{a}/{r}/seed{s}": {**c, "train_accuracy": acc[(a, r, s)]}
                                            for (a, r, s), c in census.items()}},
                   [("Hidden-unit census after training (all 1,797 digits)", table)],
                   ["'Never active' = pre-activation at or below zero on every sample. For ReLU such a unit gets "
                    "no gradient again (dead); a leaky or randomized-leaky unit still does, so it can recover: "
                    "the claim is that fewer of them stay inactive, which is what is counted.",
                    "For the sigmoid the census counts units whose input stays negative (outputs below 0.5): not "
                    "dead, shown for comparison.",
                    "Death needs a large step: the share depends on the learning rate, momentum and initialisation."])


def _diverged_words(diverged: dict, seeds: int) -> str:
    hit = {k: v for k, v in diverged.items() if v}
    if not hit:
        return ""
    return " Diverged (weights not finite, counted as not kept alive): " + ", ".join(
        f"{k} in {v} of {seeds} seeds" for k, v in hit.items()) + "."


def _draw_census(ctx, mean, rates) -> None:
    fig, axes = figure(ncols=2, width=5.0)
    positions = np.arange(len(ACTIVATIONS))
    for ax, key, label in ((axes[0][0], "dormant", "share of units never active"),
                           (axes[0][1], "zero_share", "share of activations <= 0")):
        for i, regime in enumerate(rates):
            values = [mean[f"{a}/{regime}"][key] for a in ACTIVATIONS]
            where = positions + (i - 0.5) * 0.38
            ax.bar(where, values, width=0.38, label=f"learning rate {rates[regime]:g}")
            for x, value in zip(where, values):
                if not np.isfinite(value):
                    ax.text(x, 0.02, "diverged", rotation=90, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(positions, ACTIVATIONS)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
        ax.legend()
    save(ctx, fig, "dead_units", "Hidden units after training (mean over seeds)")


DYING_RELU = Lesson(
    name="dying-relu",
    claim="ReLU sparsifies (a kind of regularisation) but neurons can die; leaky and randomized leaky ReLU keep "
          "them alive.",
    setup="`build_mlp(depth=D, width=W, activation=A)` on the 8x8 digits for A in sigmoid, relu, leaky_relu, "
          "rrelu, trained with SGD + momentum at a small and a large learning rate. After training, each hidden "
          "unit's pre-activation is read on every sample. Held when, in most seeds, ReLU at the large rate has at "
          "least `min_dead` of its units never active and twice the share of both leaky variants, and ReLU "
          "activations are at least 30 % zeros at the small rate.",
    options={"depth": Field(3, "hidden layers", min=1), "width": Field(64, "units per layer", min=1),
             "epochs": Field(8, "epochs per variant", min=1),
             "small_rate": Field(0.01, "the ordinary learning rate", min=0.0, type=float),
             "large_rate": Field(0.6, "the large learning rate", min=0.0, type=float),
             "momentum": Field(0.0, "SGD momentum", min=0.0, max=1.0, type=float),
             "min_dead": Field(0.1, "share of dead ReLU units needed", min=0.0, max=1.0, type=float),
             "seeds": Field(3, "seeds", min=1)},
    quick={"epochs": 2, "seeds": 1},
    experiment=dying_experiment,
    seconds=55,  # CPU s of the default run in docs/lessons.md
)
