"""Sequence recipes: the driving simulator, the NPZ/CSV readers, masking, and tiny end-to-end runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnkit.datasets import driving
from nnkit.datasets.sequences import read_sequences
from nnkit.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


# -- the simulator ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    return driving.generate(400, seed=3)


def test_simulator_is_deterministic_per_seed(sim):
    again = driving.generate(400, seed=3)
    np.testing.assert_array_equal(sim.x, again.x)  # NaN dropouts compare equal here
    np.testing.assert_array_equal(sim.collision, again.collision)
    np.testing.assert_array_equal(sim.actions, again.actions)
    other = driving.generate(400, seed=4)
    assert not np.array_equal(np.nan_to_num(other.x[:, :40]), np.nan_to_num(sim.x[:, :40]))


def test_simulator_shapes_lengths_dropouts(sim):
    n, t, f = sim.x.shape
    assert (n, f) == (400, len(driving.FEATURES)) and t == sim.lengths.max()
    assert 40 <= sim.lengths.min() < sim.lengths.max() <= 100  # variable lengths, 4-10 s at 10 Hz
    inside = np.arange(t)[None, :] < sim.lengths[:, None]
    rows_nan = np.isnan(sim.x)
    assert (rows_nan.any(-1) == rows_nan.all(-1)).all()  # a dropout loses every sensor of the step
    assert rows_nan.any(-1)[inside].mean() > 0.005  # there are dropouts
    assert not rows_nan[:, 0].any()  # the first step is always observed
    assert (sim.x[~inside] == 0).all()  # padding
    assert (sim.actions[~inside] == -1).all() and set(np.unique(sim.actions[inside])) == {0, 1, 2}
    assert 0.03 < sim.collision.mean() < 0.5


def test_physics_sanity_no_negative_gap_before_a_collision(sim):
    tr = sim.trajectory
    hit = sim.collision_step
    steps = np.arange(tr.gap.shape[1])[None, :]
    before = steps < hit[:, None]
    assert (tr.gap[before] > 0).all()  # no negative (or zero) gap before the collision flag
    assert (hit > sim.lengths).all()  # every window ends before any impact
    assert (tr.v_ego >= 0).all() and (tr.v_lead >= 0).all()
    observed = ~np.isnan(sim.x[..., 0]) & (np.arange(sim.x.shape[1])[None, :] < sim.lengths[:, None])
    assert (sim.x[..., 0][observed] >= 0).all()  # the radar gap is never negative


def test_collision_labels_agree_with_a_forward_rollout(sim):
    index = np.arange(len(sim.x))
    rolled = driving.rollout_collision(sim, index)
    np.testing.assert_array_equal(rolled, sim.collision)
    assert rolled.sum() > 5 and (rolled == 0).sum() > 5


def test_simulation_can_be_stopped_and_continued():
    rng = np.random.default_rng(0)
    sc = driving.draw_scenarios(50, 120, rng, window_end=np.full(50, 80))
    whole = driving.simulate(sc, 120)
    part = driving.simulate(sc, 60)
    continued = driving.simulate(sc, 120, start=part)
    for name in ("gap", "v_ego", "v_lead", "a_ego"):
        np.testing.assert_allclose(getattr(continued, name), getattr(whole, name))


def test_action_labels_follow_the_true_time_to_collision(sim):
    tr = sim.trajectory
    t = sim.x.shape[1]
    gap, rel = tr.gap[:, 1:t + 1], tr.v_lead[:, 1:t + 1] - tr.v_ego[:, 1:t + 1]
    ttc = driving.time_to_collision(gap, rel)
    inside = sim.actions >= 0
    assert (sim.actions[inside & (ttc < 3.0)] == 2).all()
    assert (sim.actions[inside & (ttc >= 3.0) & (ttc < 6.0)] == 1).all()
    assert (sim.actions[inside & (ttc >= 6.0)] == 0).all()
    assert driving.time_to_collision(np.array([10.0]), np.array([1.0]))[0] == np.inf  # opening gap


# -- readers --------------------------------------------------------------------------------

def test_npz_round_trip_ignores_padding(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    x[1, 2] = np.nan  # a dropout row
    path = tmp_path / "s.npz"
    np.savez(path, x=x, y=np.array(["a", "b", "a", "b"]), lengths=np.array([6, 4, 2, 6]))
    seqs = read_sequences(path, per_step=False)
    assert seqs.class_names == ["a", "b"] and seqs.y.tolist() == [0, 1, 0, 1]
    assert seqs.lengths.tolist() == [6, 4, 2, 6] and (seqs.x[2, 2:] == 0).all()
    assert seqs.observed[1].tolist() == [True, True, False, True, False, False]


def test_ragged_npz_without_lengths_is_a_clear_error(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((5, 3)), np.zeros((3, 3))
    path = tmp_path / "ragged.npz"
    np.savez(path, x=ragged, y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"ragged.*lengths"):
        read_sequences(path, per_step=False)


@pytest.mark.parametrize("arrays, per_step, message", [
    ({"y": np.array([0, 1])}, False, r"no array 'x'"),
    ({"x": np.zeros((2, 3, 2))}, False, r"no array 'y'"),
    ({"x": np.zeros((2, 3, 2)), "y": np.array([0, 1]), "lengths": np.array([3, 4])}, False, r"lengths\[1\] = 4"),
    ({"x": np.zeros((2, 3, 2)), "y": np.zeros((2, 3), int)}, False, r"sequence-labeling"),
    ({"x": np.zeros((2, 3, 2)), "y": np.array([0, 1])}, True, r"sequence-classification"),
    ({"x": np.array([[[1.0, np.nan]], [[1.0, 2.0]]]), "y": np.array([0, 1])}, False, r"sequence 0.*step 0.*f1"),
    ({"x": np.array([[[1.0, np.inf]], [[1.0, 2.0]]]), "y": np.array([0, 1])}, False, r"infinite"),
    ({"x": np.zeros((2, 3, 2)), "y": np.array([1, 1])}, False, r"at least two classes"),
    ({"x": np.zeros((2, 3, 2)), "y": np.array([0.0, np.nan])}, False, r"NaN"),
])
def test_bad_npz_inputs(tmp_path, arrays, per_step, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        read_sequences(path, per_step=per_step)


CSV = """sequence_id,t,gap,rel_speed,label
a,0,30.0,-1.0,keep
a,2,28.0,-2.0,brake
a,1,,,ease_off
b,0,50.0,0.5,keep
"""


def test_long_csv_per_step_with_a_dropout_row(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(CSV)
    seqs = read_sequences(path, per_step=True, class_names=["keep", "ease_off", "brake"])
    assert seqs.ids == ["a", "b"] and seqs.lengths.tolist() == [3, 1]
    assert seqs.feature_names == ["gap", "rel_speed"]
    assert np.isnan(seqs.x[0, 1]).all() and seqs.x[0, 2].tolist() == [28.0, -2.0]  # ordered by t
    assert seqs.y.tolist() == [[0, 1, 2], [0, -1, -1]]


@pytest.mark.parametrize("text, per_step, message", [
    ("sequence_id,t,gap\na,0,1\nb,0,2\n", True, r"line 1: no 'label' column"),
    ("sequence_id,t,gap,label\na,0,1,x\na,1,oops,x\n", True, r"line 3, column 'gap': 'oops' is not a number"),
    ("sequence_id,t,gap,rel,label\na,0,1,,x\n", True, r"line 2, column 'rel': empty"),
    ("sequence_id,t,gap,label\na,0,1,x\na,1,2,y\n", False, r"lines 2 and 3.*one label per sequence"),
    ("sequence_id,t,gap,label\na,0,1,x\na,0,2,x\n", True, r"lines 2 and 3.*two rows with t = 0"),
    ("", True, r"empty file"),
])
def test_bad_csv_inputs(tmp_path, text, per_step, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_sequences(path, per_step=per_step)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(DataError, match="unsupported file type"):
        read_sequences(path, per_step=True)


# -- tasks: masking, config errors -------------------------------------------------------------

def _cfg(recipe: str, *sets: str):
    from nnkit.pipeline import resolve

    return resolve(recipe, overrides=["data.sequences=120", "model.units=8", "model.dense_units=4", *sets])


@pytest.mark.parametrize("recipe", ["collision", "driving"])
def test_padding_does_not_change_predictions(recipe):
    resolved = _cfg(recipe)
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    model = task.build_model(cfg, prepared)
    test = prepared.test
    first = task.probabilities(model, test, prepared.state)
    # pad 25 more steps, and fill every padded step with garbage: lengths decide what is read
    wider = test.take(np.arange(len(test)))
    extra = np.random.default_rng(1).normal(size=(len(test), 25, test.x.shape[2])).astype("float32")
    wider.x = np.concatenate([test.x, extra], axis=1)
    wider.x[np.arange(wider.x.shape[1])[None, :] >= test.lengths[:, None]] = 7.0
    second = task.probabilities(model, wider, prepared.state)
    if task.per_step:
        second = second[:, : test.x.shape[1]]
        inside = test.valid
        np.testing.assert_allclose(first[inside], second[inside], atol=1e-5)
    else:
        np.testing.assert_allclose(first, second, atol=1e-5)


def test_bidirectional_is_refused_for_causal_per_step_decisions():
    resolved = _cfg("driving", "model.bidirectional=true")
    with pytest.raises(ConfigError, match=r"model.bidirectional.*future"):
        resolved.task.load(resolved.cfg)
    offline = _cfg("driving", "model.bidirectional=true", "model.causal=false")
    offline.task.check_config(offline.cfg)  # offline labelling may read both ways
    collision = _cfg("collision", "model.bidirectional=true")
    collision.task.check_config(collision.cfg)


# -- end to end ------------------------------------------------------------------------------

TINY = ["--set", "train.epochs=1", "--set", "data.sequences=240", "--set", "model.units=8",
        "--set", "model.dense_units=4", "--set", "train.batch_size=32"]


def _run(recipe, out):
    from click.testing import CliRunner

    from nnkit.cli import cli

    result = CliRunner().invoke(cli, ["run", recipe, "--out", str(out), "--quiet", *TINY])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("seq_runs")
    return {recipe: _run(recipe, base / recipe) for recipe in ("collision", "driving")}


@pytest.mark.parametrize("recipe, primary, baselines", [
    ("collision", "roc_auc", {"logreg_last_frame", "ttc_rule"}),
    ("driving", "macro_f1", {"ttc_rule", "majority"}),
])
def test_tiny_run_writes_a_complete_run_folder(runs, recipe, primary, baselines):
    run = runs[recipe]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["primary"] == primary and metrics["higher_is_better"] is True
    assert primary in metrics["model"] and baselines <= set(metrics["baselines"])
    if recipe == "collision":
        assert {"roc_auc", "precision", "recall", "f1"} <= set(metrics["model"])
        assert np.asarray(metrics["details"]["confusion_matrix"]).shape == (2, 2)
        for name in baselines:
            assert 0.0 <= metrics["baselines"][name]["roc_auc"] <= 1.0
    else:
        assert list(metrics["model"])[:3] == ["macro_f1", "accuracy", "recall_brake"]
        assert np.asarray(metrics["details"]["confusion_matrix"]).shape == (3, 3)
    assert metrics["verdict"]
    assert (run / "model.keras").is_file() and (run / "export" / "saved_model").is_dir()
    assert (run / "plots" / "example_sequence.png").is_file()
    assert "Confusion matrix" in (run / "report.md").read_text() or "confusion matrix" in (run / "report.md").read_text()


def test_saved_models_in_a_fresh_process_match_the_keras_models(runs, tmp_path):
    """Both recipes' SavedModels, reloaded in one fresh Python process, give the Keras models' outputs."""
    from nnkit.datasets.sequences import Sequences
    from nnkit.pipeline import run_config
    from nnkit.runs import open_run
    from nnkit.train import load_model

    data = driving.generate(5, seed=99, min_seconds=2.0, max_seconds=6.0)
    np.savez(tmp_path / "in.npz", x=data.x, lengths=data.lengths)
    code = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        d = np.load({str(tmp_path / 'in.npz')!r})
        mask = (~np.isnan(d["x"]).any(-1) & (np.arange(d["x"].shape[1]) < d["lengths"][:, None])).astype("int32")
        for name, path in zip(sys.argv[1::2], sys.argv[2::2]):
            m = tf.saved_model.load(path)
            out = m.signatures["serving_default"](x=tf.constant(d["x"]), lengths=tf.constant(d["lengths"]))
            masked = m.predict_masked(x=tf.constant(np.nan_to_num(d["x"])), mask=tf.constant(mask))
            np.savez({str(tmp_path)!r} + "/" + name + ".npz", p=out["probabilities"].numpy(),
                     q=masked["probabilities"].numpy(), label=out["label"].numpy().astype(str))
    """)
    args = []
    for recipe in ("collision", "driving"):
        args += [recipe, str(runs[recipe] / "export" / "saved_model")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    seqs = Sequences(data.x, data.lengths, None, feature_names=list(driving.FEATURES))
    for recipe in ("collision", "driving"):
        run = open_run(runs[recipe])
        task, state = run_config(run).task, run.state()
        out = np.load(tmp_path / f"{recipe}.npz")
        expected = task.probabilities(load_model(run.model_file), seqs, state)
        if recipe == "driving":
            inside = seqs.valid
            np.testing.assert_allclose(out["p"][inside], expected[inside], atol=1e-5)
            np.testing.assert_allclose(out["q"][inside], expected[inside], atol=1e-5)
            assert (out["label"][~inside] == "").all()
            assert set(out["label"][inside]) <= set(state["class_names"])
        else:
            np.testing.assert_allclose(out["p"], expected, atol=1e-5)
            np.testing.assert_allclose(out["q"], expected, atol=1e-5)
            assert set(out["label"]) <= {"collision", "no_collision"}


@pytest.mark.parametrize("recipe", ["collision", "driving"])
def test_predict_command_on_npz_and_csv(runs, recipe, tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from nnkit.cli import cli

    data = driving.generate(3, seed=7, min_seconds=2.0, max_seconds=3.0)
    np.savez(tmp_path / "in.npz", x=data.x, lengths=data.lengths)
    rows = []
    for i in range(3):
        for s in range(int(data.lengths[i])):
            values = ["" if np.isnan(v) else f"{v:.4f}" for v in data.x[i, s]]
            rows.append(",".join([f"car{i}", str(s), *values, "unknown"]))  # labels are not read
    (tmp_path / "in.csv").write_text("sequence_id,t," + ",".join(driving.FEATURES) + ",label\n" + "\n".join(rows) + "\n")
    runner = CliRunner()
    frames = []
    for name in ("in.npz", "in.csv"):
        out = tmp_path / f"{name}.preds.csv"
        result = runner.invoke(cli, ["predict", str(runs[recipe]), str(tmp_path / name), "--out", str(out)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        frames.append(pd.read_csv(out))
    npz, csv = frames
    expected_rows = 3 if recipe == "collision" else int(data.lengths.sum())
    assert len(npz) == len(csv) == expected_rows
    prob = [c for c in npz.columns if c.startswith("p_")]
    np.testing.assert_allclose(npz[prob].to_numpy(), csv[prob].to_numpy(), atol=1e-3)
    assert (npz["label"] == csv["label"]).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence_id,t,gap\na,0,1\n")
    result = runner.invoke(cli, ["predict", str(runs[recipe]), str(bad)])
    assert result.exit_code == 2 and "feature" in result.output


def test_cli_refuses_bidirectional_driving_with_exit_code_2(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli

    result = CliRunner().invoke(cli, ["run", "driving", "--out", str(tmp_path / "r"), "--quiet",
                                      "--set", "model.bidirectional=true", *TINY])
    assert result.exit_code == 2 and "bidirectional" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("recipe, per_step", [("collision", False), ("driving", True)])
def test_user_npz_with_other_features_and_classes(tmp_path, recipe, per_step):
    """Data without gap/rel_speed and with three classes: other baselines, no crash, readable outputs."""
    rng = np.random.default_rng(0)
    n, t = 60, 9
    x = rng.normal(size=(n, t, 2)).astype("float32")
    lengths = rng.integers(3, t + 1, n)
    names = np.array(["low", "mid", "high"])
    y = names[rng.integers(0, 3, (n, t) if per_step else n)]
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, lengths=lengths, feature_names=np.array(["speed", "angle"]))
    resolved = _cfg(recipe, f"data.path={str(path)!r}")
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    assert prepared.state["class_names"] == ["high", "low", "mid"] and prepared.state["ttc_features"] is None
    model = task.build_model(cfg, prepared)
    task.compile_kwargs(cfg, prepared)
    evaluation = task.evaluate(model, prepared, cfg)
    assert evaluation.primary == "macro_f1" and "ttc_rule" not in evaluation.baselines
    assert ("logreg_last_frame" if not per_step else "majority") in evaluation.baselines
    module, examples = task.serving(model, prepared.state, cfg)
    out = module.predict(**examples["predict"])
    labels = {v.decode() for v in np.asarray(out["label"]).ravel()} - {""}
    assert labels <= {"high", "low", "mid"}


def test_the_positive_class_comes_second(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("sequence_id,t,gap,label\na,0,1,collision\nb,0,2,no_collision\nc,0,3,no_collision\n")
    seqs = read_sequences(path, per_step=False)
    assert seqs.class_names == ["no_collision", "collision"] and seqs.y.tolist() == [1, 0, 0]
    path.write_text("sequence_id,t,gap,label\na,0,1,yes\nb,0,2,no\n")
    assert read_sequences(path, per_step=False).class_names == ["no", "yes"]
