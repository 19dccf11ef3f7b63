"""A seeded, vectorised car-following simulator: data for the `collision` and `driving` recipes.

An ego car follows a lead car on a straight road, simulated at 10 Hz for
thousands of scenarios at once (numpy arrays over scenarios, one Python loop
over time steps). Every random choice of a scenario is drawn up front into a
:class:`Scenario`, so the physics is a deterministic function of the scenario:
``simulate(scenario, steps)`` can be stopped and continued from any step and
gives the same trajectory (that is how labels are checked against a forward
rollout).

* The **lead** car cruises with a small random acceleration, and has one event:
  it brakes (3–9.5 m/s² for 1–4 s), accelerates, or another car **cuts in**
  (the gap jumps down to a fraction of itself and the new lead is slower),
  sometimes followed by braking.
* The **ego** driver follows the Intelligent Driver Model (Treiber et al. 2000)
  on what it perceived ``delay`` steps ago (0.3–2.0 s), with actuator lag
  and a physical braking limit; some drivers are **distracted** around the
  event and keep their last command for 1–3 s: they react too late.
* A **collision** is the first step whose true bumper-to-bumper gap is <= 0.

Sensors per step (``FEATURES``): gap [m], relative speed (lead − ego) [m/s],
ego speed [m/s], ego acceleration and lead acceleration [m/s²], each with
Gaussian noise; the radar gap is never negative. Dropouts (isolated steps and
bursts) make every sensor of a step NaN: a masked step.

Windows have variable lengths (``min_seconds``..``max_seconds``), drawn
independently of what happens: each scenario's event starts 0–3 s before its
window ends, or up to 1 s after it (a quarter of the scenarios: not every
collision is foreseeable), so the label cannot be read from the length.
A window always ends before the first collision: scenarios that crash inside
the window are dropped and replaced.

Labels:

* ``collision`` (many-to-one): a collision happens within ``horizon`` seconds
  after the window's last step, found by rolling the physics forward.
* ``action`` (per step): what a safe driver should do given the *true*
  time-to-collision TTC = gap / closing speed: ``brake`` when TTC < ``brake_ttc``,
  ``ease_off`` when TTC < ``ease_ttc``, else ``keep``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

HZ = 10
DT = 1.0 / HZ
FEATURES = ("gap", "rel_speed", "ego_speed", "ego_accel", "lead_accel")
ACTIONS = ("keep", "ease_off", "brake")
COLLISION_CLASSES = ("no_collision", "collision")
EVENTS = ("none", "brake", "accelerate", "cut_in")
EVENT_PROBS = (0.08, 0.50, 0.10, 0.32)
NOISE = {"gap_base": 0.3, "gap_rel": 0.03, "rel_speed": 1.0, "ego_speed": 0.15, "ego_accel": 0.3,
         "lead_accel": 0.8}  # standard deviations at noise = 1


@dataclass
class Scenario:
    """Every random choice of ``n`` scenarios; arrays of shape [n] (or [n, steps])."""

    v_ego0: np.ndarray      # initial speeds [m/s]
    v_lead0: np.ndarray
    gap0: np.ndarray        # initial gap [m]
    desired_speed: np.ndarray  # IDM v0
    headway: np.ndarray     # IDM T [s]
    min_gap: np.ndarray     # IDM s0 [m]
    a_max: np.ndarray       # IDM a [m/s2]
    b_comf: np.ndarray      # IDM b [m/s2]
    b_phys: np.ndarray      # physical braking limit [m/s2]
    delay: np.ndarray       # reaction delay [steps]
    event: np.ndarray       # index into EVENTS
    event_step: np.ndarray
    event_steps: np.ndarray  # duration [steps]
    event_accel: np.ndarray  # signed lead acceleration during the event
    cut_gap: np.ndarray     # cut-in: gap multiplier
    cut_speed: np.ndarray   # cut-in: new lead speed / ego speed
    distract_step: np.ndarray  # -1: never distracted
    distract_steps: np.ndarray
    lead_noise: np.ndarray  # [n, steps] innovations of the lead's random acceleration

    def __len__(self):
        return len(self.v_ego0)

    def take(self, index) -> "Scenario":
        return Scenario(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class Trajectory:
    """True state at steps 0..steps (arrays [n, steps + 1]) and the delayed-perception buffer."""

    gap: np.ndarray
    v_ego: np.ndarray
    v_lead: np.ndarray
    a_ego: np.ndarray
    a_lead: np.ndarray
    command: np.ndarray     # the ego's commanded acceleration
    lead_ou: np.ndarray     # the lead's random acceleration (an Ornstein–Uhlenbeck process)

    @property
    def steps(self) -> int:
        return self.gap.shape[1] - 1

    def collision_step(self) -> np.ndarray:
        """First step with gap <= 0, or a huge number when there is none."""
        hit = self.gap <= 0
        return np.where(hit.any(axis=1), hit.argmax(axis=1), np.iinfo(np.int32).max)

    def prefix(self, steps: int) -> "Trajectory":
        return Trajectory(**{f.name: getattr(self, f.name)[:, : steps + 1].copy() for f in fields(self)})


def draw_scenarios(n: int, steps: int, rng: np.random.Generator, window_end: np.ndarray | None = None,
                   events: str = "end") -> Scenario:
    """Draw ``n`` scenarios for ``steps`` steps.

    ``events="end"``: each event starts 0-3 s before ``window_end`` (or up to 1 s after: 1 in 4);
    ``"anywhere"``: uniformly in the window's first 90 %.
    """
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    v_ego0 = u(8.0, 33.0)
    headway = u(0.8, 2.2)
    gap0 = (2.0 + v_ego0 * headway) * u(0.5, 1.5)
    if window_end is None:
        window_end = np.full(n, steps)
    event = rng.choice(len(EVENTS), size=n, p=EVENT_PROBS)
    # the event starts 0-3 s before the window's end (or up to 1 s after it: 1 in 4), whatever the
    # window's length: the label must not be readable from the length alone
    if events == "end":
        start = window_end - rng.uniform(-10.0, 30.0, n)
    elif events == "anywhere":
        start = rng.uniform(0.05, 0.9, n) * window_end
    else:
        raise ValueError(f"`events` must be 'end' or 'anywhere'. Received: events={events!r}")
    event_step = np.clip(start, 5, steps - 1).astype(np.int32)
    brake = rng.uniform(3.0, 9.5, n)
    event_accel = np.select([event == 1, event == 2, event == 3],
                            [-brake, u(0.8, 2.5), np.where(rng.random(n) < 0.45, -brake * 0.8, 0.0)], 0.0)
    distracted = rng.random(n) < 0.5
    distract_step = np.where(distracted, event_step + rng.integers(-10, 6, n), -1).astype(np.int32)
    return Scenario(
        v_ego0=v_ego0, v_lead0=np.clip(v_ego0 + rng.normal(0.0, 1.5, n), 0.0, None), gap0=gap0,
        desired_speed=v_ego0 * u(1.0, 1.2) + 1.0, headway=headway, min_gap=u(1.5, 3.0),
        a_max=u(1.0, 2.0), b_comf=u(1.5, 3.0), b_phys=u(6.0, 9.0),
        delay=rng.integers(3, 21, n).astype(np.int32),
        event=event.astype(np.int32), event_step=event_step,
        event_steps=rng.integers(10, 41, n).astype(np.int32), event_accel=event_accel,
        cut_gap=u(0.25, 0.6), cut_speed=u(0.7, 1.0),
        distract_step=distract_step, distract_steps=rng.integers(10, 31, n).astype(np.int32),
        lead_noise=rng.normal(0.0, 1.0, (n, steps)).astype(np.float64),
    )


def simulate(sc: Scenario, steps: int, start: Trajectory | None = None) -> Trajectory:
    """Run the physics for ``steps`` steps; continue ``start`` (a prefix) when given.

    Deterministic: ``simulate(sc, k + m)`` equals ``simulate(sc, k + m, start=simulate(sc, k))``.
    """
    n = len(sc)
    if sc.lead_noise.shape[1] < steps:
        raise ValueError(f"scenario has lead noise for {sc.lead_noise.shape[1]} steps, asked {steps}")
    names = [f.name for f in fields(Trajectory)]
    # time-major work arrays [steps + 1, n]: each step reads and writes contiguous rows
    arrays = {name: np.zeros((steps + 1, n)) for name in names}
    if start is None:
        arrays["gap"][0], arrays["v_ego"][0], arrays["v_lead"][0] = sc.gap0, sc.v_ego0, sc.v_lead0
        first = 0
    else:
        first = start.steps
        for name in names:
            arrays[name][: first + 1] = getattr(start, name).T
    G, VE, VL, AE, AL, CMD, OU = (arrays[name] for name in names)
    lead_noise = np.ascontiguousarray(sc.lead_noise[:, :steps].T)
    cols = np.arange(n)
    cut_in = sc.event == 3
    cruise = sc.v_lead0.copy()  # the lead's preferred speed: the new car's speed after a cut-in
    if first > 0:
        after = cut_in & (sc.event_step <= first)
        cruise = np.where(after, VL[np.minimum(sc.event_step, first), cols], cruise)
    crashed = (G[: first + 1] <= 0).any(axis=0)
    sqrt_ab = np.sqrt(sc.a_max * sc.b_comf)
    event_end = sc.event_step + sc.event_steps
    has_event_accel = sc.event_accel != 0
    distract_end = sc.distract_step + sc.distract_steps
    can_distract = sc.distract_step >= 0
    cut_steps = set(sc.event_step[cut_in].tolist())
    for t in range(first, steps):
        gap, ve, vl = G[t], VE[t], VL[t]
        # lead: OU random acceleration + speed keeping + its event
        ou = OU[t] * 0.95 + 0.12 * lead_noise[t]
        in_event = (t >= sc.event_step) & (t < event_end) & has_event_accel
        a_lead = np.where(in_event, sc.event_accel, ou + 0.05 * (cruise - vl))
        # ego: IDM on the state it perceived `delay` steps ago
        seen = np.maximum(t - sc.delay, 0)
        g_p, ve_p, vl_p = G[seen, cols], VE[seen, cols], VL[seen, cols]
        s_star = sc.min_gap + np.maximum(0.0, ve_p * sc.headway + ve_p * (ve_p - vl_p) / (2 * sqrt_ab))
        idm = sc.a_max * (1 - (ve_p / sc.desired_speed) ** 4 - (s_star / np.maximum(g_p, 0.1)) ** 2)
        idm = np.clip(idm, -sc.b_phys, sc.a_max)
        distracted = can_distract & (t > sc.distract_step) & (t < distract_end)
        command = np.where(distracted, CMD[t - 1] if t > 0 else 0.0, idm)
        a_ego = AE[t] + (command - AE[t]) * 0.4  # actuator lag (~0.25 s)
        # integrate; speeds never negative
        ve_next = np.maximum(ve + a_ego * DT, 0.0)
        vl_next = np.maximum(vl + a_lead * DT, 0.0)
        AE[t + 1] = (ve_next - ve) / DT
        AL[t + 1] = (vl_next - vl) / DT
        gap_next = gap + (vl + vl_next) * DT / 2 - (ve + ve_next) * DT / 2
        # cut-in: a slower car appears in front, closer
        if t + 1 in cut_steps:
            cut = cut_in & (t + 1 == sc.event_step)
            gap_next = np.where(cut, gap_next * sc.cut_gap, gap_next)
            vl_next = np.where(cut, ve_next * sc.cut_speed, vl_next)
            cruise = np.where(cut, vl_next, cruise)
        # after a collision the cars stay together
        crashed |= gap_next <= 0
        G[t + 1] = np.where(crashed, np.minimum(gap_next, 0.0), gap_next)
        VE[t + 1], VL[t + 1] = ve_next, vl_next
        CMD[t], OU[t + 1] = command, ou
    tr = Trajectory(**{name: arrays[name].T for name in names})
    return tr


def time_to_collision(gap, rel_speed):
    """gap / closing speed where closing (rel_speed < 0), else inf; works on noisy sensors too."""
    closing = -np.asarray(rel_speed, dtype=np.float64)
    gap = np.maximum(np.asarray(gap, dtype=np.float64), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(closing > 1e-6, gap / np.maximum(closing, 1e-6), np.inf)


def actions_from_ttc(ttc, brake_ttc: float = 3.0, ease_ttc: float = 6.0) -> np.ndarray:
    """0 keep, 1 ease_off, 2 brake."""
    ttc = np.asarray(ttc)
    return np.where(ttc < brake_ttc, 2, np.where(ttc < ease_ttc, 1, 0)).astype(np.int8)


@dataclass
class DrivingData:
    """Generated sequences, padded to the longest window; NaN sensor rows are dropouts."""

    x: np.ndarray            # [n, T, 5] float32 noisy sensors (NaN at dropouts, 0 after the end)
    lengths: np.ndarray      # [n] observed steps
    collision: np.ndarray    # [n] int8, collision within `horizon` seconds after the window
    actions: np.ndarray      # [n, T] int8 (-1 after the end)
    collision_step: np.ndarray  # [n] first collision step of the full rollout (huge: none)
    scenario: Scenario
    trajectory: Trajectory   # the true state, steps 0..T + horizon
    horizon_steps: int
    feature_names: tuple = FEATURES


def generate(n: int = 10000, *, seed: int = 0, min_seconds: float = 4.0, max_seconds: float = 10.0,
             horizon: float = 3.0, noise: float = 1.0, dropout: float = 0.02, brake_ttc: float = 3.0,
             ease_ttc: float = 6.0, events: str = "end") -> DrivingData:
    """``n`` sequences with sensors, the collision label and per-step actions; seeded.

    ``events``: ``"end"`` puts each scenario's event near the window's end (the
    collision recipe: will it crash soon?), ``"anywhere"`` anywhere in it (the
    driving recipe: more steps where a safe driver must act).

    Scenarios whose collision falls inside the observed window are dropped (the
    window must end before any impact) and more are drawn until there are ``n``.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive integer. Received: n={n!r}")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds. Received: {min_seconds!r}, {max_seconds!r}")
    rng = np.random.default_rng(seed)
    t_min, t_max = max(2, int(round(min_seconds * HZ))), max(2, int(round(max_seconds * HZ)))
    h = max(1, int(round(horizon * HZ)))
    steps = t_max + h
    parts, have = [], 0
    while have < n:
        m = max(64, int((n - have) * 1.3))
        lengths = rng.integers(t_min, t_max + 1, m)
        sc = draw_scenarios(m, steps, rng, window_end=lengths, events=events)
        tr = simulate(sc, steps)
        hit = tr.collision_step()
        keep = np.flatnonzero(hit > lengths)[: n - have]
        # gather the kept scenarios along the contiguous (time-major) axis
        kept = Trajectory(**{f.name: np.ascontiguousarray(getattr(tr, f.name).T[:, keep]).T
                             for f in fields(Trajectory)})
        parts.append((lengths[keep], sc.take(keep), kept, hit[keep]))
        have += len(keep)
    if len(parts) == 1:
        lengths, sc, tr, hit = parts[0]
    else:
        lengths = np.concatenate([p[0] for p in parts])
        sc = Scenario(**{f.name: np.concatenate([getattr(p[1], f.name) for p in parts]) for f in fields(Scenario)})
        tr = Trajectory(**{f.name: np.concatenate([getattr(p[2], f.name).T for p in parts], axis=1).T
                           for f in fields(Trajectory)})
        hit = np.concatenate([p[3] for p in parts])
    collision = ((hit > lengths) & (hit <= lengths + h)).astype(np.int8)
    # window step s is the state after simulation step s + 1 (step 0 is the initial state)
    t_idx = np.arange(t_max)[None, :]
    valid = t_idx < lengths[:, None]
    state = lambda a: a[:, 1: t_max + 1]  # noqa: E731
    gap, ve, vl = state(tr.gap), state(tr.v_ego), state(tr.v_lead)
    ae, al = state(tr.a_ego), state(tr.a_lead)
    shape = gap.shape
    noisy = np.stack([
        np.maximum(gap + rng.normal(0, 1, shape) * noise * (NOISE["gap_base"] + NOISE["gap_rel"] * np.abs(gap)), 0.0),
        (vl - ve) + rng.normal(0, NOISE["rel_speed"] * noise, shape),
        np.maximum(ve + rng.normal(0, NOISE["ego_speed"] * noise, shape), 0.0),
        ae + rng.normal(0, NOISE["ego_accel"] * noise, shape),
        al + rng.normal(0, NOISE["lead_accel"] * noise, shape),
    ], axis=-1)
    dropped = rng.random(shape) < dropout
    if dropout > 0:  # bursts: some sequences lose the radar for 0.3-1 s
        burst = rng.random(n) < min(1.0, 10 * dropout)
        b_start = (rng.random(n) * lengths).astype(int)
        b_len = rng.integers(3, 11, n)
        dropped |= burst[:, None] & (t_idx >= b_start[:, None]) & (t_idx < (b_start + b_len)[:, None])
    dropped[:, 0] = False  # every sequence starts with an observed step
    noisy[dropped] = np.nan
    noisy[~valid] = 0.0
    actions = actions_from_ttc(time_to_collision(gap, vl - ve), brake_ttc, ease_ttc)
    actions = np.where(valid, actions, -1).astype(np.int8)
    T = int(lengths.max())
    return DrivingData(x=noisy[:, :T].astype(np.float32), lengths=lengths.astype(np.int32), collision=collision,
                       actions=actions[:, :T], collision_step=hit, scenario=sc, trajectory=tr, horizon_steps=h)


def rollout_collision(data: DrivingData, index) -> np.ndarray:
    """Re-derive the collision label of sequences ``index`` by continuing the physics from the window's end.

    The trajectory is cut at each window's last step, the simulation restarted
    from that state for ``horizon`` more steps, and the label is whether a
    collision happens in those steps. Used to check the stored labels.
    """
    out = []
    for i in np.atleast_1d(index):
        sc = data.scenario.take([i])
        length = int(data.lengths[i])
        full = Trajectory(**{f.name: getattr(data.trajectory, f.name)[[i]] for f in fields(Trajectory)})
        prefix = full.prefix(length)
        future = simulate(sc, length + data.horizon_steps, start=prefix)
        out.append(bool((future.gap[0, length + 1:] <= 0).any()) and not bool((prefix.gap[0] <= 0).any()))
    return np.array(out, dtype=np.int8)
