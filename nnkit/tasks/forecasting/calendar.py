"""Calendar channels of each row's next step, in numpy (training) and in TensorFlow (serving).

The two must agree: the exported graph recomputes from ISO date strings what
training computed from numpy dates (tests compare them).
"""

from __future__ import annotations

import math

import numpy as np

CALENDAR_CHANNELS = ("next_dow_sin", "next_dow_cos", "next_dom_sin", "next_dom_cos", "next_doy_sin",
                     "next_doy_cos")


def next_day(days: np.ndarray, freq: str) -> np.ndarray:
    """The date after each day by the series' rule: next business day ("B") or next day ("D")."""
    ordinal = days.astype(np.int64)
    if freq == "B":
        dow = (ordinal + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
        ordinal = ordinal + np.where(dow == 4, 3, np.where(dow == 5, 2, 1))
    else:
        ordinal = ordinal + 1
    return ordinal.astype("datetime64[D]")


def calendar_features(dates: np.ndarray, freq: str = "D") -> np.ndarray:
    """[n, 6]: sin/cos of day of week, day of month and day of year of each row's *next* step.

    The next step's date follows the frequency rule (weekends skipped for
    business days, holidays not), so the last row of a window carries the
    calendar of the first forecast date, the same in training and serving.
    """
    days = next_day(np.asarray(dates).astype("datetime64[D]"), freq)
    ordinal = days.astype(np.int64)
    dow = (ordinal + 3) % 7
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)  # 0-based
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)  # 0-based
    angles = [2 * np.pi * dow / 7.0, 2 * np.pi * dom / 31.0, 2 * np.pi * doy / 366.0]
    return np.stack([f(a) for a in angles for f in (np.sin, np.cos)], axis=1)


def tf_days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (int64 tensors; H. Hinnant's algorithm)."""
    import tensorflow as tf

    y = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.math.floormod(month + 9, 12)  # March = 0
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def tf_civil_from_days(days):
    """(year, month, day) int64 tensors of days since 1970-01-01 (H. Hinnant's algorithm)."""
    import tensorflow as tf

    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = tf.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + tf.cast(month <= 2, tf.int64)
    return year, month, day


def tf_calendar_features(dates, freq: str = "D"):
    """ISO date strings [N, W] ("YYYY-MM-DD...") -> the 6 next-step calendar channels [N, W, 6]."""
    import tensorflow as tf

    year = tf.strings.to_number(tf.strings.substr(dates, 0, 4), tf.int64)
    month = tf.strings.to_number(tf.strings.substr(dates, 5, 2), tf.int64)
    day = tf.strings.to_number(tf.strings.substr(dates, 8, 2), tf.int64)
    days = tf_days_from_civil(year, month, day)
    if freq == "B":
        weekday = tf.math.floormod(days + 3, 7)
        days = days + tf.where(weekday == 4, tf.constant(3, tf.int64),
                               tf.where(weekday == 5, tf.constant(2, tf.int64), tf.constant(1, tf.int64)))
    else:
        days = days + 1
    year, month, day = tf_civil_from_days(days)
    dow = tf.cast(tf.math.floormod(days + 3, 7), tf.float32)
    dom = tf.cast(day - 1, tf.float32)
    doy = tf.cast(days - tf_days_from_civil(year, tf.ones_like(month), tf.ones_like(day)), tf.float32)
    two_pi = 2 * math.pi
    angles = [two_pi * dow / 7.0, two_pi * dom / 31.0, two_pi * doy / 366.0]
    return tf.stack([f(a) for a in angles for f in (tf.sin, tf.cos)], axis=-1)
