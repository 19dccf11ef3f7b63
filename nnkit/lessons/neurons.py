"""Single neurons and one hidden layer: the perceptron, and approximation by width."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.lessons.base import Lesson, Outcome, agreement, markdown_table
from nnkit.lessons.fitting import predict, rng
from nnkit.lessons.plots import figure, save

# -- perceptron --------------------------------------------------------------------------------


def two_blobs(gen, n: int, separable: bool):
    """2-D points of two classes; ``separable`` removes every point within a margin of the true line."""
    centre, spread = (1.2, 0.8) if separable else (0.6, 1.0)
    y = gen.integers(0, 2, n)
    x = gen.normal(0.0, spread, (n, 2)) + np.where(y[:, None] == 1, centre, -centre) * np.array([1.0, 0.6])
    if separable:
        keep = np.abs(x @ np.array([1.0, 0.6]) / np.hypot(1.0, 0.6)) > 0.3
        keep &= (x @ np.array([1.0, 0.6]) > 0) == (y == 1)
        x, y = x[keep], y[keep]
    return x.astype("float32"), y.astype("float32")


def _boundary(model):
    w, b = model.get_layer("perceptron_neuron").get_weights()
    return np.concatenate([w[:, 0], b])


def _angle(u, v) -> float:
    u, v = u[:2], v[:2]
    cos = abs(float(u @ v)) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12)
    return float(np.degrees(np.arccos(min(1.0, cos))))


def perceptron_experiment(ctx) -> Outcome:
    from sklearn.linear_model import LogisticRegression

    from nnkit.builders import build_perceptron

    rows, measures, agree, plain, drawn = [], {}, [], [], {}
    for kind in ("separable", "overlapping"):
        for seed in ctx.seeds:
            x, y = two_blobs(rng(ctx, kind, seed), ctx["samples"], kind == "separable")
            cut = int(0.7 * len(y))
            train, test = (x[:cut], y[:cut]), (x[cut:], y[cut:])
            common = dict(epochs=ctx["epochs"], batch_size=8, optimizer="sgd", momentum=0.0)
            step = ctx.fit(f"{kind}-step-s{seed}", lambda: build_perceptron(2, activation="step"), train,
                           loss="mse", metrics=["binary_accuracy"], seed=seed,
                           train={**common, "learning_rate": 0.05})
            # the averaged perceptron (Freund & Schapire), as nnkit's perceptron recipe trains it
            averaged = ctx.fit(f"{kind}-step-averaged-s{seed}", lambda: build_perceptron(2, activation="step"),
                               train, loss="mse", metrics=["binary_accuracy"], seed=seed,
                               train={**common, "learning_rate": 0.05, "ema": True, "ema_momentum": 0.99})
            logistic = ctx.fit(f"{kind}-sigmoid-s{seed}", lambda: build_perceptron(2, activation="sigmoid"), train,
                               loss="binary_crossentropy", metrics=["binary_accuracy"], seed=seed,
                               train={**common, "learning_rate": 0.5})
            reference = LogisticRegression(C=1e4).fit(*train)
            acc = {
                "perceptron_rule": _accuracy(step.model, test),
                "averaged_perceptron": _accuracy(averaged.model, test),
                "sigmoid_neuron": _accuracy(logistic.model, test),
                "sklearn_logistic": float(reference.score(*test)),
            }
            ref = np.concatenate([reference.coef_[0], reference.intercept_])
            angle = _angle(_boundary(averaged.model), ref)
            close = abs(acc["averaged_perceptron"] - acc["sklearn_logistic"]) <= ctx["tolerance"]
            plain_close = abs(acc["perceptron_rule"] - acc["sklearn_logistic"]) <= ctx["tolerance"]
            agree.append(close)
            plain.append(plain_close)
            measures[f"{kind}/seed{seed}"] = {**acc, "boundary_angle_deg": angle, "close": close,
                                              "plain_rule_close": plain_close}
            rows.append([kind, seed, acc["perceptron_rule"], acc["averaged_perceptron"], acc["sigmoid_neuron"],
                         acc["sklearn_logistic"], angle])
            if seed == ctx.seed:
                drawn[kind] = (x, y, _boundary(step.model), _boundary(averaged.model), ref)
    _draw_boundaries(ctx, drawn)
    ok, total = agreement(agree)
    plain_ok, _ = agreement(plain)
    separable_acc = [m["averaged_perceptron"] for k, m in measures.items() if k.startswith("separable")]
    held = ok == total and min(separable_acc) >= 0.97
    mean = {k: float(np.mean([m[k] for m in measures.values()]))
            for k in ("perceptron_rule", "averaged_perceptron", "sklearn_logistic", "boundary_angle_deg")}
    verdict = (f"The averaged perceptron (a step neuron trained by the perceptron rule) matched logistic "
               f"regression's test accuracy within {ctx['tolerance']:.2f} in {ok} of {total} runs (mean "
               f"{mean['averaged_perceptron']:.3f} vs {mean['sklearn_logistic']:.3f}; boundaries "
               f"{mean['boundary_angle_deg']:.0f} degrees apart on average; {min(separable_acc):.3f} or better on "
               f"separable data); the plain rule's last weights were close in {plain_ok} of {total} "
               f"(mean {mean['perceptron_rule']:.3f}).")
    table = markdown_table(["data", "seed", "perceptron rule (last)", "averaged perceptron", "sigmoid neuron (nnkit)",
                            "sklearn logistic", "angle averaged vs logistic (deg)"], rows)
    return Outcome(held, verdict, {"runs": measures, "mean": mean, "seeds_agreeing": ok, "seeds": total,
                                   "plain_rule_agreeing": plain_ok},
                   [("Test accuracy (30 % held out)", table)],
                   ["Mini-batches of 8: the batch form of Rosenblatt's rule (updates summed over a batch), not the "
                    "strictly online one.",
                    "On overlapping classes the perceptron rule never settles: its last weights move with every "
                    "mistake, so the verdict uses the averaged perceptron (train.ema, as the perceptron recipe); "
                    "the plain rule's last weights are reported beside it.",
                    "Accuracy alone cannot tell the two apart where the classes separate cleanly: both are linear "
                    "classifiers; they differ in what they optimise (mistakes vs likelihood), seen in the angle."])


def _accuracy(model, data) -> float:
    x, y = data
    p = predict(model, x)[:, 0]
    return float(np.mean((p >= 0.5) == (y >= 0.5)))


def _draw_boundaries(ctx, drawn) -> None:
    fig, axes = figure(ncols=len(drawn))
    for ax, (kind, (x, y, step, sigmoid, ref)) in zip(axes[0], drawn.items()):
        ax.scatter(x[y == 0, 0], x[y == 0, 1], s=6, c="tab:blue", alpha=0.5, label="class 0")
        ax.scatter(x[y == 1, 0], x[y == 1, 1], s=6, c="tab:orange", alpha=0.5, label="class 1")
        xs = np.linspace(x[:, 0].min(), x[:, 0].max(), 50)
        for (w1, w2, b), style, label in ((step, "k-", "perceptron rule, last weights"),
                                          (sigmoid, "g--", "averaged perceptron"),
                                          (ref, "r:", "logistic regression (sklearn)")):
            if abs(w2) > 1e-9:
                ax.plot(xs, -(w1 * xs + b) / w2, style, lw=2, label=label)
        ax.set_ylim(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)
        ax.set_title(f"{kind} classes")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save(ctx, fig, "boundaries", "Decision boundaries (seed %d)" % ctx.seed)


PERCEPTRON = Lesson(
    name="perceptron",
    claim="One neuron with a step activation is a perceptron, close to logistic regression.",
    setup="Two 2-D problems (separable blobs with a margin; overlapping blobs), 70/30 split. Variants: "
          "`build_perceptron(activation='step')` trained with squared error and plain SGD (which is exactly "
          "Rosenblatt's rule), the same with `train.ema` (the averaged perceptron, as the perceptron recipe), "
          "`build_perceptron(activation='sigmoid')` with cross-entropy (logistic regression "
          "as a neuron), and scikit-learn's LogisticRegression as the reference. "
          "Held when the averaged perceptron's test "
          "accuracy is within `tolerance` of logistic regression's for every seed and data set, and at least 0.97 "
          "on separable data.",
    options={"samples": Field(600, "points per data set", min=20),
             "epochs": Field(20, "epochs per variant", min=1),
             "seeds": Field(3, "seeds per data set", min=1),
             "tolerance": Field(0.05, "accuracy gap still counted as close", min=0.0, type=float)},
    quick={"samples": 200, "epochs": 5, "seeds": 1},
    experiment=perceptron_experiment,
    seconds=49,  # CPU s of the default run in docs/lessons.md
)

# -- approximation -------------------------------------------------------------------------------

FUNCTIONS = {
    "sine": lambda x: np.sin(2 * np.pi * x),
    "abs": lambda x: np.abs(x),
    "bump": lambda x: np.exp(-25 * x ** 2),
}


def approximation_experiment(ctx) -> Outcome:
    from scipy.stats import spearmanr

    from nnkit.builders import build_mlp

    widths = list(ctx["widths"])
    grid = np.linspace(-1, 1, 400, dtype="float32")[:, None]
    errors, curves, verdicts, rows = {}, {}, {}, []
    for name, f in FUNCTIONS.items():
        gen = rng(ctx, name)
        x = gen.uniform(-1, 1, (ctx["samples"], 1)).astype("float32")
        y, truth = f(x).astype("float32"), f(grid)
        scale = float(np.var(truth))
        errors[name] = {}
        for width in widths:
            fitted = ctx.fit(f"{name}-w{width}",
                             lambda w=width: build_mlp((1,), 1, depth=1, width=w, activation="tanh",
                                                       output="regression"),
                             (x, y), loss="mse", train={"epochs": ctx["epochs"], "batch_size": 32,
                                                        "optimizer": "adam", "learning_rate": 0.01})
            pred = predict(fitted.model, grid)
            errors[name][width] = float(np.mean((pred - truth) ** 2) / scale)
            curves.setdefault(name, {})[width] = pred[:, 0]
        series = [errors[name][w] for w in widths]
        rho = float(spearmanr(widths, series)[0]) if len(widths) > 2 else -1.0
        gain = series[0] / max(series[-1], 1e-12)
        verdicts[name] = {"spearman": rho, "improvement": gain,
                          "held": bool(gain >= ctx["min_gain"] and rho <= -0.8)}
        rows.append([name] + series + [rho])
    _draw(ctx, widths, errors, curves, grid)
    ok = sum(v["held"] for v in verdicts.values())
    held = ok == len(FUNCTIONS)
    verdict = (f"Error fell with width for {ok} of {len(FUNCTIONS)} functions: normalised test error from width "
               f"{widths[0]} to {widths[-1]} " + ", ".join(
                   f"{n} {errors[n][widths[0]]:.3g} -> {errors[n][widths[-1]]:.3g} (rank correlation "
                   f"{verdicts[n]['spearman']:.2f})" for n in FUNCTIONS) + ".")
    table = markdown_table(["function"] + [f"width {w}" for w in widths] + ["Spearman(width, error)"], rows)
    return Outcome(held, verdict, {"normalised_mse": errors, "trend": verdicts},
                   [("Test error (mean squared error / variance of the function)", table)],
                   ["Every width gets the same training budget (epochs, Adam, learning rate): wide networks are "
                    "limited by optimisation before capacity, so the curve flattens rather than falling for ever.",
                    "The Taylor analogy is loose: a tanh layer adds shifted, scaled bumps (universal approximation), "
                    "not higher powers; the measured trend is what the claim predicts either way.",
                    f"Held per function: error at width {widths[-1]} at least {ctx['min_gain']:g} times smaller than "
                    f"at width {widths[0]}, and a rank correlation of -0.8 or lower."])


def _draw(ctx, widths, errors, curves, grid) -> None:
    fig, axes = figure(ncols=1 + len(FUNCTIONS), width=4.0)
    ax = axes[0][0]
    for name in FUNCTIONS:
        ax.loglog(widths, [errors[name][w] for w in widths], "o-", label=name)
    ax.set_xlabel("hidden units")
    ax.set_ylabel("test MSE / variance")
    ax.set_title("error vs width")
    ax.legend()
    shown = [w for w in widths if w in (widths[0], widths[len(widths) // 2], widths[-1])]
    for ax, (name, f) in zip(axes[0][1:], FUNCTIONS.items()):
        ax.plot(grid[:, 0], f(grid[:, 0]), "k-", lw=3, alpha=0.3, label="target")
        for w in shown:
            ax.plot(grid[:, 0], curves[name][w], label=f"{w} units")
        ax.set_title(name)
        ax.legend(fontsize=7)
    save(ctx, fig, "approximation")


APPROXIMATION = Lesson(
    name="approximation",
    claim="More neurons approximate a function ever more closely (like a Taylor expansion).",
    setup="Three 1-D functions on [-1, 1] (sin 2πx, |x|, a Gaussian bump), learned from noise-free random samples "
          "by `build_mlp(depth=1, width=W, activation='tanh', output='regression')` for each width W; the error "
          "is measured on a dense grid and divided by the function's variance.",
    options={"widths": Field([1, 2, 4, 8, 16, 64, 256], "hidden units to try", min=1),
             "samples": Field(4096, "training samples per function", min=10),
             "epochs": Field(12, "epochs per variant", min=1),
             "min_gain": Field(10.0, "error ratio (narrowest / widest) needed", min=1.0, type=float)},
    quick={"widths": [1, 8, 64], "samples": 1024, "epochs": 4},
    experiment=approximation_experiment,
    seconds=76,  # CPU s of the default run in docs/lessons.md
)
