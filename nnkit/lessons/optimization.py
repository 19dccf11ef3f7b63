"""Learning rate, batch size and optimizers on a convex problem whose optimum is known exactly."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.lessons.base import Lesson, Outcome, markdown_table
from nnkit.lessons.fitting import predict, rng
from nnkit.lessons.plots import figure, save


def regression_problem(gen, n: int, d: int):
    """Linear regression with correlated features of unequal scale: a convex quadratic loss."""
    mixing = 0.3 * gen.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    x = (gen.normal(size=(n, d)) @ mixing * np.linspace(0.7, 1.5, d)).astype("float32")
    w = gen.normal(size=d)
    y = (x @ w + 0.5 + 0.1 * gen.normal(size=n)).astype("float32")[:, None]
    return x, y


def exact_optimum(x, y):
    """scikit-learn's least squares: the weights, bias and loss every optimizer should reach."""
    from sklearn.linear_model import LinearRegression

    reference = LinearRegression().fit(x, y)
    loss = float(np.mean((reference.predict(x) - y) ** 2))
    return np.concatenate([reference.coef_[0], reference.intercept_]), loss


def critical_rate(x) -> float:
    """2 / largest eigenvalue of the MSE Hessian 2/n [x 1]^T [x 1]: full-batch GD diverges above it."""
    a = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype("float64")
    return float(2.0 / np.linalg.eigvalsh(2.0 / len(x) * a.T @ a).max())


def _weights(model):
    w, b = model.get_layer("mlp_output").get_weights()
    return np.concatenate([w[:, 0], b])


def learning_rate_experiment(ctx) -> Outcome:
    from nnkit.builders import build_mlp

    x, y = regression_problem(rng(ctx, "problem"), ctx["samples"], ctx["features"])
    n, d = x.shape
    w_star, loss_star = exact_optimum(x, y)
    lr_crit = critical_rate(x)
    scale = float(np.var(y))  # excess loss in units of the target's variance (L* itself is the noise, ~0.01)

    def linear():
        return build_mlp((d,), 1, depth=0, output="regression")  # no hidden layer: a linear model

    def run(tag, data, **train):
        fitted = ctx.fit(tag, linear, data, loss="mse", shuffle=train.pop("shuffle", True),
                         train={"optimizer": "sgd", "momentum": 0.0, **train})
        final = float(np.mean((predict(fitted.model, x) - y) ** 2))
        distance = float(np.linalg.norm(_weights(fitted.model) - w_star) / np.linalg.norm(w_star))
        excess = (final - loss_star) / scale if np.isfinite(final) else float("inf")
        curve = [(v - loss_star) / scale for v in fitted.curve("loss")]
        return {"excess_loss": excess, "distance": distance if np.isfinite(distance) else float("inf"),
                "seconds": fitted.seconds, "curve": curve}

    # full-batch gradient descent: one epoch = `repeat` identical steps over the whole set (no shuffling)
    repeat = ctx["steps"] // ctx["epochs"]
    tiled = (np.tile(x, (repeat, 1)), np.tile(y, (repeat, 1)))
    rates = {f: run(f"full-batch-lr{f:g}x", tiled, learning_rate=f * lr_crit, batch_size=n, epochs=ctx["epochs"],
                    shuffle=False) for f in ctx["rate_factors"]}
    # batch 1 at a tenth of the rate: a single sample's curvature is far above the average's, so the
    # full rate that suits batch 32 and the full batch makes batch-1 SGD diverge
    batches = {b: run(f"batch{b}", (x, y), learning_rate=ctx["sgd_factor"] * lr_crit * (0.1 if b == 1 else 1.0),
                      batch_size=b, epochs=ctx["epochs"]) for b in (1, 32, n)}
    optimizers = {
        "sgd": run("opt-sgd", (x, y), learning_rate=ctx["sgd_factor"] * lr_crit, batch_size=32, epochs=ctx["epochs"]),
        "sgd+momentum": run("opt-momentum", (x, y), learning_rate=0.1 * ctx["sgd_factor"] * lr_crit, momentum=0.9,
                            batch_size=32, epochs=ctx["epochs"]),
        "adam": run("opt-adam", (x, y), optimizer="adam", learning_rate=0.05, batch_size=32, epochs=ctx["epochs"]),
        "rmsprop": run("opt-rmsprop", (x, y), optimizer="rmsprop", learning_rate=0.01, batch_size=32,
                       epochs=ctx["epochs"]),
    }
    tol = ctx["tolerance"]
    below = {f: r for f, r in rates.items() if f < 1}
    above = {f: r for f, r in rates.items() if f > 1}
    converges = all(r["excess_loss"] <= tol for r in below.values())
    diverges = all(not np.isfinite(r["excess_loss"]) or r["curve"][-1] > r["curve"][0] for r in above.values())
    reaches = batches[32]["distance"] <= ctx["distance_tolerance"]
    held = converges and diverges and reaches
    _draw(ctx, rates, batches, optimizers, lr_crit)
    verdict = (f"Full-batch gradient descent on least squares (critical rate 2/λmax = {lr_crit:.3g}) "
               f"{'converged' if converges else 'did not all converge'} below it (excess loss "
               + ", ".join(f"{r['excess_loss']:.1e} at {f:g}x" for f, r in below.items()) + ") and "
               f"{'diverged' if diverges else 'did not all diverge'} above it ("
               + ", ".join(f"{_num(r['excess_loss'])} at {f:g}x" for f, r in above.items()) + "); mini-batch SGD "
               f"(32) ended {batches[32]['distance']:.2%} from the exact optimum (batch 1: "
               f"{batches[1]['distance']:.2%}, full batch: {batches[n]['distance']:.2%}); after {ctx['epochs']} "
               "epochs: " + ", ".join(f"{k} {r['excess_loss']:.1e}" for k, r in optimizers.items()) + " excess loss.")
    tables = [
        ("Full batch, learning rate as a multiple of the critical rate",
         markdown_table(["rate / critical", "learning rate", "excess loss (L - L*) / var(y)", "distance to w*"],
                        [[f, f * lr_crit, _num(r["excess_loss"]), _num(r["distance"])] for f, r in rates.items()])),
        (f"Batch size (SGD, learning rate {ctx['sgd_factor']:g} x critical, a tenth of it for batch 1; "
         f"{ctx['epochs']} epochs)",
         markdown_table(["batch", "excess loss", "distance to w*", "fit seconds"],
                        [[b, _num(r["excess_loss"]), _num(r["distance"]), r["seconds"]] for b, r in batches.items()])),
        ("Optimizers (batch 32)",
         markdown_table(["optimizer", "excess loss", "distance to w*"],
                        [[k, _num(r["excess_loss"]), _num(r["distance"])] for k, r in optimizers.items()])),
    ]
    strip = lambda group: {str(k): {m: v for m, v in r.items() if m != "curve"} for k, r in group.items()}  # noqa: E731
    return Outcome(held, verdict, {"critical_rate": lr_crit, "optimum_loss": loss_star, "rates": strip(rates),
                                   "batch_sizes": strip(batches), "optimizers": strip(optimizers)},
                   tables,
                   ["One convex problem (least squares): the critical rate is exact there; on a network's "
                    "non-convex loss it is only local and changes during training.",
                    "Batch size 1 with a constant rate stops at a noise floor around the optimum; a decaying "
                    "schedule (train.schedule) would take it closer.",
                    "Adam and RMSprop use their usual rates (0.05, 0.01), not tuned; their comparison says little "
                    "beyond 'they also converge here'.",
                    f"Held: every rate below critical within {tol:g} relative excess loss, every rate above growing, "
                    f"and batch-32 SGD within {ctx['distance_tolerance']:.0%} of the optimal weights."])


def _num(value) -> str:
    return "diverged" if not np.isfinite(value) or value > 1e12 else f"{value:.3g}"


def _finite(curve):
    return [v if np.isfinite(v) and v < 1e12 else np.nan for v in curve]


def _draw(ctx, rates, batches, optimizers, lr_crit) -> None:
    fig, axes = figure(ncols=3, width=4.6)
    for ax, group, title, label in (
            (axes[0][0], rates, f"full batch (critical rate {lr_crit:.2g})", lambda k: f"{k:g} x critical"),
            (axes[0][1], batches, "batch size (batch 1 at a tenth of the rate)", lambda k: f"batch {k}"),
            (axes[0][2], optimizers, "optimizers (batch 32)", str)):
        for key, result in group.items():
            curve = _finite(result["curve"])
            ax.semilogy(range(1, len(curve) + 1), np.maximum(curve, 1e-8), "o-", ms=3, label=label(key))
        ax.set_xlabel("epoch")
        ax.set_ylabel("excess loss (L - L*) / var(y)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    save(ctx, fig, "loss_curves", "Least squares: distance to the exact optimum")


LEARNING_RATE = Lesson(
    name="learning-rate",
    claim="Too large an SGD learning rate oscillates or diverges; mini-batches, Adam and RMSprop; on a convex "
          "problem SGD reaches the optimum.",
    setup="Least-squares regression (correlated features of unequal scale) fitted by `build_mlp(depth=0, "
          "output='regression')`, a linear model, whose exact optimum scikit-learn computes. Full-batch gradient "
          "descent at multiples of the critical rate 2/λmax(Hessian); SGD with batch 1, 32 and the full set at one "
          "rate; SGD, SGD with momentum, Adam and RMSprop at batch 32.",
    options={"samples": Field(512, "rows", min=8), "features": Field(8, "features", min=1),
             "epochs": Field(20, "epochs per variant", min=1),
             "steps": Field(200, "full-batch gradient steps in all", min=1),
             "rate_factors": Field([0.1, 0.5, 0.9, 1.1, 1.5], "full-batch learning rates / critical rate",
                                   min=0.0, item_type=(int, float)),
             "sgd_factor": Field(0.3, "SGD learning rate / critical rate", min=0.0, type=float),
             "tolerance": Field(1e-3, "relative excess loss counted as converged", min=0.0, type=float),
             "distance_tolerance": Field(0.02, "relative distance to the optimal weights counted as reached",
                                         min=0.0, type=float)},
    quick={"samples": 256, "epochs": 5, "steps": 100},
    experiment=learning_rate_experiment,
    seconds=32,  # CPU s of the default run in docs/lessons.md
)
