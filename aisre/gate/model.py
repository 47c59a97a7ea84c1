"""The change-risk model: a calibrated, explainable logistic regression over JIT change features,
and the documented second stage that adds blast radius and incident history.

**Stage 1 (learned, :class:`JITModel`).** Inputs: the twelve Kamei metrics (``la ld nf nd ns ent
ndev age nuc aexp arexp asexp``), ``churn = la + ld`` and ``fix`` (0/1). Every count goes through
``log1p`` (heavy tails); each value is first clipped to the range seen in training, so a 3,000-file
diff is scored as the largest training diff and the reasons say "out of range" instead of
extrapolating. Standardised, then an L2 logistic regression (``C = 0.01``: strong shrinkage keeps
the correlated size metrics from taking opposite signs, so the reasons read sensibly). Calibration:
Platt scaling fitted on out-of-time predictions — the training rows, ordered by ``author_date``,
are cut into 5 blocks; blocks 2..5 are each predicted by a model fitted on the blocks before it;
a 1-D logistic fit of label on logit gives ``p = sigmoid(a * logit + b)``. Never a random K-fold
(the base rate drifts over time, ApacheJIT trap 4).

``fix`` at gate time means "a commit message names a fix, a bug or an issue key"; in ApacheJIT it
is True only for commits linked to a JIRA bug later resolved as fixed (partly post-hoc, trap 7),
so its learned weight is optimistic. ``project`` leaks the label (trap 2) and is never read;
``year`` is a committer-date stratum and not used either.

**Explanations.** A feature's contribution is ``a * coef * z`` in calibrated log-odds, ``z`` its
standardised value: how far this change's value moves the odds away from the average training
change. The largest positive contributions become the reasons, with the value and the share of
training changes it is riskier than.

**Stage 2 (fixed, :func:`combine`).** Odds multipliers, each 1 for the reference change (one
standard service, prior failure rate, no recent incidents, no hot files), so with no topology and
no history the score IS the calibrated stage-1 probability:

* change-failure rate: ``odds(cfr) / odds(prior mean 10 %)``, clipped to [0.5, 4];
* recent incidents on the services (7 days): ``1.25 ** min(n, 4)``;
* hot files (touched by an earlier incident-causing change): 1.5, or 2 when half the files are;
* blast radius: ``((1 + weighted) / 2) ** 0.3`` (critical service alone 1.23; weight 10: 1.67;
  a best-effort leaf 0.88).

``p = sigmoid(logit(p_jit) + sum(log multipliers))``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.errors import DataError, UsageError
from aisre.gate.features import KAMEI_FEATURES

__all__ = [
    "Adjustment",
    "Contribution",
    "DEFAULT_C",
    "JITModel",
    "MODEL_FEATURES",
    "MODEL_SCHEMA",
    "combine",
    "default_data_path",
    "evaluate",
    "fit_jit",
    "load_model",
    "model_path",
    "ranking_metrics",
    "read_jit_csv",
    "train",
]

MODEL_FEATURES = (*KAMEI_FEATURES, "churn", "fix")
"""Stage-1 inputs, in order: the Kamei metrics, ``churn = la + ld`` and ``fix``."""
MODEL_SCHEMA = "aisre.gate.model/1"
"""The ``schema`` field of a model JSON file."""
DEFAULT_C = 0.01
"""Inverse L2 strength of the logistic regression."""
CALIBRATION_BLOCKS = 5
"""Time-ordered blocks for the out-of-time Platt calibration."""
_LINEAR = frozenset({"fix"})
_IGNORED = {"project": "leaks the label (ApacheJIT trap 2)", "year": "committer-date stratum, not the author year",
            "commit_id": "an identifier"}  # fmt: skip


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


# --------------------------------------------------------------------------- data


def default_data_path() -> Path:
    """Return the shared ApacheJIT folder: ``$AISRE_SHARED/datasets/apachejit`` (default ``../shared``
    next to the working directory's project).

    Raises:
        UsageError: when it does not exist (pass ``--data``).
    """
    roots = [Path(os.environ["AISRE_SHARED"])] if os.environ.get("AISRE_SHARED") else []
    roots += [Path.cwd().parent / "shared", Path(__file__).resolve().parents[3] / "shared"]
    for root in roots:
        p = root / "datasets" / "apachejit"
        if p.is_dir():
            return p
    raise UsageError("no ApacheJIT data found: pass --data CSV or set AISRE_SHARED")


def _csv_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("apachejit*.csv")) or sorted(path.glob("*.csv"))
        if not files:
            raise DataError("no CSV file in the folder", path=path)
        return files
    if not path.is_file():
        raise DataError("no such file", path=path)
    return [path]


def read_jit_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ApacheJIT-format CSV (a file, or a folder of ``apachejit*.csv``) into a frame with
    ``author_date``, the Kamei metrics, ``fix`` and ``buggy`` (bool), sorted by ``author_date``.

    ``project``, ``year`` and ``commit_id`` are never read into features (``project`` leaks the
    label). ``fix`` may be absent (then all False).

    Raises:
        DataError: for a missing column, a non-numeric or negative metric, or a label that is not
            True/False, naming the file, the field and the row.
    """
    frames = []
    for f in _csv_files(Path(path)):
        try:
            raw = pd.read_csv(f, usecols=lambda c: c not in ("project", "year"), dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"cannot read CSV: {str(exc).splitlines()[0]}", path=f) from exc
        frames.append(_validate(raw, f))
    out = pd.concat(frames, ignore_index=True)
    if "commit_id" in out:
        out = out.drop_duplicates("commit_id")
    return out.sort_values("author_date", kind="stable").reset_index(drop=True)


def _validate(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    need = ["author_date", *KAMEI_FEATURES, "buggy"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", path=path, field=missing[0])
    out = pd.DataFrame(index=raw.index)
    if "commit_id" in raw:
        out["commit_id"] = raw["commit_id"]
    for col in ["author_date", *KAMEI_FEATURES]:
        values = pd.to_numeric(raw[col].str.strip(), errors="coerce")
        bad = ~np.isfinite(values.to_numpy(float)) | (values.to_numpy(float) < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError("not a non-negative number", path=path, field=col, row=row + 2, value=raw[col].iloc[row])
        out[col] = values.astype(float)
    for col in ("buggy", "fix"):
        if col not in raw:
            out[col] = False
            continue
        text = raw[col].str.strip().str.lower()
        known = text.isin(["true", "false", "1", "0"])
        if not known.all():
            row = int(np.flatnonzero(~known.to_numpy())[0])
            raise DataError("expected True or False", path=path, field=col, row=row + 2, value=raw[col].iloc[row])
        out[col] = text.isin(["true", "1"])
    return out


def _design(frame: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """Raw model inputs (before clipping and transforms), one column per MODEL_FEATURES."""
    df = pd.DataFrame(frame) if not isinstance(frame, pd.DataFrame) else frame
    out = pd.DataFrame(index=df.index)
    for col in KAMEI_FEATURES:
        out[col] = pd.to_numeric(df[col], errors="coerce").astype(float).clip(lower=0.0).fillna(0.0)
    out["churn"] = out["la"] + out["ld"]
    out["fix"] = df["fix"].astype(float) if "fix" in df else 0.0
    return out[list(MODEL_FEATURES)]


# --------------------------------------------------------------------------- model


@dataclass
class Contribution:
    """One feature's part in a score: raw value, whether it was clipped, its contribution in
    calibrated log-odds, and the share (0..100) of training changes it is riskier than."""

    feature: str
    value: float
    clipped_to: float | None
    contribution: float
    riskier_than: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"feature": self.feature, "value": self.value, "clipped_to": self.clipped_to,
                "contribution": round(self.contribution, 4), "riskier_than": round(self.riskier_than, 1)}  # fmt: skip


@dataclass
class JITModel:
    """A fitted stage-1 model: standardised logistic regression on clipped log1p features plus
    Platt calibration; :meth:`to_dict` / :meth:`from_dict` are its JSON form (no pickle)."""

    features: list[str]
    lower: np.ndarray
    upper: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibration: dict[str, float]
    cdf: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    # scoring
    def _z(self, raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = raw[self.features].to_numpy(float)
        clipped = np.clip(x, self.lower, self.upper)
        t = clipped.copy()
        logs = np.array([f not in _LINEAR for f in self.features])
        t[:, logs] = np.log1p(t[:, logs])
        return (t - self.mean) / self.scale, clipped

    def logit(self, frame: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Return the calibrated log-odds of each row (columns: the Kamei metrics and ``fix``)."""
        z, _ = self._z(_design(frame))
        raw = z @ self.coef + self.intercept
        return self.calibration["a"] * raw + self.calibration["b"]

    def predict(self, frame: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Return the calibrated probability that each change is defect-inducing."""
        return _sigmoid(self.logit(frame))

    def explain(self, row: Mapping[str, float]) -> tuple[float, list[Contribution]]:
        """Return ``(probability, contributions sorted from most risk-raising)`` for one change."""
        raw = _design({k: [v] for k, v in row.items()})
        z, clipped = self._z(raw)
        a = self.calibration["a"]
        contrib = a * self.coef * z[0]
        p = float(_sigmoid(a * (z[0] @ self.coef + self.intercept) + self.calibration["b"]))
        out = []
        for i, f in enumerate(self.features):
            v = float(raw[f].iloc[0])
            out.append(Contribution(f, v, float(clipped[0, i]) if clipped[0, i] != v else None, float(contrib[i]),
                                    self.riskier_than(f, v)))  # fmt: skip
        out.sort(key=lambda c: -c.contribution)
        return p, out

    def riskier_than(self, feature: str, value: float) -> float:
        """Return the share (0..100) of training changes this *value* of *feature* is riskier
        than: those with a smaller value when the feature raises risk, a larger one otherwise."""
        table = self.cdf.get(feature)
        if not table:
            return 50.0
        x = np.asarray(table["x"])
        sign = self.coef[self.features.index(feature)]
        if sign >= 0:
            return float(100.0 * np.interp(value, x, np.asarray(table["lt"]), left=0.0, right=1.0))
        return float(100.0 * (1.0 - np.interp(value, x, np.asarray(table["le"]), left=0.0, right=1.0)))

    # JSON
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: schema, features, clip ranges, scaler, coefficients, calibration,
        empirical CDFs for the reasons, provenance and metrics."""
        return {
            "schema": MODEL_SCHEMA,
            "features": list(self.features),
            "transform": {f: ("identity" if f in _LINEAR else "log1p") for f in self.features},
            "clip": {"lower": self.lower.tolist(), "upper": self.upper.tolist()},
            "scaler": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "coef": self.coef.tolist(),
            "intercept": float(self.intercept),
            "calibration": {"method": "platt", **{k: float(v) for k, v in self.calibration.items()}},
            "cdf": self.cdf,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, path: str | None = None) -> JITModel:
        """Build a model from its JSON form.

        Raises:
            DataError: for another schema, unknown features or arrays of the wrong length.
        """
        if not isinstance(doc, Mapping) or doc.get("schema") != MODEL_SCHEMA:
            found = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
            raise DataError(f"not a gate model (schema {found!r}; supported {MODEL_SCHEMA})", path=path, field="schema")
        try:
            feats = [str(f) for f in doc["features"]]
            unknown = set(feats) - set(MODEL_FEATURES)
            if unknown:
                raise DataError(f"unknown feature(s) {sorted(unknown)}", path=path, field="features")
            arrays = {k: np.asarray(v, dtype=float) for k, v in (
                ("lower", doc["clip"]["lower"]), ("upper", doc["clip"]["upper"]), ("mean", doc["scaler"]["mean"]),
                ("scale", doc["scaler"]["scale"]), ("coef", doc["coef"]))}  # fmt: skip
            cal = {"a": float(doc["calibration"]["a"]), "b": float(doc["calibration"]["b"])}
            intercept = float(doc["intercept"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed gate model: {exc!r}", path=path) from None
        for k, v in arrays.items():
            if v.shape != (len(feats),) or not np.isfinite(v).all():
                raise DataError(f"needs {len(feats)} finite numbers", path=path, field=k)
        if (arrays["scale"] <= 0).any():
            raise DataError("scales must be positive", path=path, field="scale")
        return cls(feats, arrays["lower"], arrays["upper"], arrays["mean"], arrays["scale"], arrays["coef"], intercept,
                   cal, dict(doc.get("cdf", {})), dict(doc.get("provenance", {})), dict(doc.get("metrics", {})))  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON form to *path* (folders created); return the path.

        Raises:
            DataError: when the file cannot be written.
        """
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")
        except OSError as exc:
            raise DataError(f"cannot write the model: {exc.strerror}", path=p) from exc
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JITModel:
        """Read a model JSON file.

        Raises:
            DataError: when it cannot be read or is not a gate model.
        """
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read the gate model: {exc}", path=p) from exc
        return cls.from_dict(doc, path=str(p))


def _fit_lr(z: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit(z, y)
    return lr.coef_[0].astype(float), float(lr.intercept_[0])


def _prepare(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, features: Sequence[str]) -> np.ndarray:
    t = np.clip(x, lower, upper)
    logs = np.array([f not in _LINEAR for f in features])
    t[:, logs] = np.log1p(t[:, logs])
    return t


def _scaler(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = t.mean(axis=0)
    scale = t.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def fit_jit(
    frame: pd.DataFrame,
    *,
    C: float = DEFAULT_C,
    blocks: int = CALIBRATION_BLOCKS,
    use_fix: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> JITModel:
    """Fit a :class:`JITModel` on *frame* (columns: ``author_date``, the Kamei metrics, ``fix``,
    ``buggy``), ordered by ``author_date``; calibration on out-of-time predictions.

    Raises:
        DataError: when there are fewer than 50 rows or only one class.
    """
    df = frame.sort_values("author_date", kind="stable").reset_index(drop=True)
    y = df["buggy"].astype(bool).to_numpy().astype(int)
    if len(df) < 50 or y.min() == y.max():
        raise DataError(f"need at least 50 changes of both classes to fit, got {len(df)} ({int(y.sum())} buggy)")
    feats = [f for f in MODEL_FEATURES if use_fix or f != "fix"]
    x = _design(df)[feats].to_numpy(float)
    lower, upper = x.min(axis=0), x.max(axis=0)
    t = _prepare(x, lower, upper, feats)

    # out-of-time logits for calibration: each block predicted by a model of the blocks before it
    edges = np.linspace(0, len(df), blocks + 1).astype(int)
    logits, labels = [], []
    for k in range(1, blocks):
        tr, te = slice(0, edges[k]), slice(edges[k], edges[k + 1])
        if y[tr].min() == y[tr].max():
            continue
        m, s = _scaler(t[tr])
        c, b = _fit_lr((t[tr] - m) / s, y[tr], C)
        logits.append(((t[te] - m) / s) @ c + b)
        labels.append(y[te])
    mean, scale = _scaler(t)
    coef, intercept = _fit_lr((t - mean) / scale, y, C)
    if logits and np.concatenate(labels).min() != np.concatenate(labels).max():
        pa, pb = _fit_lr(np.concatenate(logits)[:, None], np.concatenate(labels), 1e6)
        cal = {"a": float(pa[0]), "b": float(pb)}
    else:
        cal = {"a": 1.0, "b": 0.0}
    cdf = {}
    for i, f in enumerate(feats):
        qs = np.unique(np.quantile(x[:, i], np.linspace(0, 1, 101)))
        col = np.sort(x[:, i])
        cdf[f] = {
            "x": [float(v) for v in qs],
            "lt": [float(v) for v in np.searchsorted(col, qs, side="left") / len(col)],
            "le": [float(v) for v in np.searchsorted(col, qs, side="right") / len(col)],
        }
    prov = {
        "rows": int(len(df)),
        "buggy_share": round(float(y.mean()), 4),
        "author_date_min": float(df["author_date"].min()),
        "author_date_max": float(df["author_date"].max()),
        "C": C,
        "calibration": f"platt on out-of-time logits of {blocks - 1} forward-chained blocks",
        "ignored_columns": _IGNORED,
        "fix_note": "fix: at gate time the messages name a fix, bug or issue key; in ApacheJIT partly post-hoc",
        **(dict(provenance) if provenance else {}),
    }
    return JITModel(feats, lower, upper, mean, scale, coef, intercept, cal, cdf, prov)


# --------------------------------------------------------------------------- metrics, train, evaluate


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Return ``auc``, ``recall_at_10``, ``recall_at_20`` (share of all positives among the
    riskiest 10 % / 20 %) and ``brier`` of scores *p* against 0/1 labels *y*."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="stable")
    pos = max(int(y.sum()), 1)

    def recall(share: float) -> float:
        k = int(math.ceil(share * len(p)))
        return float(y[order[:k]].sum() / pos)

    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"auc": auc, "recall_at_10": recall(0.1), "recall_at_20": recall(0.2), "brier": float(brier_score_loss(y, p))}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def evaluate(data: str | os.PathLike[str] | None = None, *, split: float = 0.7, use_fix: bool = True) -> dict[str, Any]:
    """Fit on the earliest *split* share of the changes (by ``author_date``) and measure on the
    rest; return ``{"n", "auc", "recall_at_10", "recall_at_20", "brier"}`` (``n``: test changes).

    Raises:
        UsageError: when no data is given and the shared ApacheJIT folder is absent, or *split*
            is not in (0, 1).
        DataError: for malformed CSV.
    """
    if not 0.0 < split < 1.0:
        raise UsageError(f"split must be in (0, 1), got {split!r}")
    frame = read_jit_csv(data if data is not None else default_data_path())
    cut = int(len(frame) * split)
    train_part, test = frame.iloc[:cut], frame.iloc[cut:]
    if test["buggy"].nunique() < 2:
        raise DataError("the later part has only one class; cannot measure AUC", path=str(data or ""))
    model = fit_jit(train_part, use_fix=use_fix)
    scores = model.predict(test)
    return {"n": int(len(test)), **{k: round(v, 4) for k, v in ranking_metrics(test["buggy"].to_numpy(), scores).items()}}


def model_path() -> Path:
    """Return where ``aisre gate train`` writes by default: ``$AISRE_HOME/models/gate.json``."""
    from aisre.store import home

    return home() / "models" / "gate.json"


def train(
    data: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None, *, C: float = DEFAULT_C
) -> dict[str, Any]:
    """Fit on all of *data* (default: the shared ApacheJIT folder), with the time-split
    evaluation recorded in the model's metrics, and write the JSON to *out* (default
    :func:`model_path`, which the gate then uses). Return ``{"model", "n", "buggy_share",
    "evaluation", "coef"}``.

    Raises:
        UsageError: when no data is given and the shared folder is absent.
        DataError: for malformed CSV or an unwritable output.
    """
    src = Path(data) if data is not None else default_data_path()
    frame = read_jit_csv(src)
    files = _csv_files(src)
    prov = {
        "data": [{"file": f.name, "sha256": _sha256(f)} for f in files],
        "dataset": "ApacheJIT (Keshavarz & Nagappan, MSR 2022), label buggy (SZZ)",
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sklearn": _sklearn_version(),
        **_manifest_source(src),
    }
    model = fit_jit(frame, C=C, provenance=prov)
    cut = int(len(frame) * 0.7)
    if frame.iloc[cut:]["buggy"].nunique() == 2 and frame.iloc[:cut]["buggy"].nunique() == 2:
        held = fit_jit(frame.iloc[:cut], C=C)
        later = frame.iloc[cut:]
        model.metrics = {"time_split": {"train_share": 0.7, "n": int(len(later)), **{
            k: round(v, 4) for k, v in ranking_metrics(later["buggy"].to_numpy(), held.predict(later)).items()}}}  # fmt: skip
    path = model.save(out if out is not None else model_path())
    return {
        "model": str(path),
        "n": int(len(frame)),
        "buggy_share": model.provenance["buggy_share"],
        "evaluation": model.metrics.get("time_split"),
        "coef": {f: round(float(c), 4) for f, c in zip(model.features, model.coef, strict=True)},
    }


def _manifest_source(src: Path) -> dict[str, Any]:
    """The upstream source named by a MANIFEST.json beside the data, when there is one."""
    manifest = (src if src.is_dir() else src.parent) / "MANIFEST.json"
    try:
        doc = json.loads(manifest.read_text())
        source = doc["source"]
        return {"upstream": {k: source[k] for k in ("repo", "commit", "path", "paper") if k in source}}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def load_model(path: str | os.PathLike[str] | None = None) -> JITModel:
    """Return the model at *path*; else ``$AISRE_HOME/models/gate.json`` when ``aisre gate
    train`` wrote one; else the packaged default (fitted on the shared ApacheJIT).

    Raises:
        DataError: when the file cannot be read or is not a gate model.
    """
    if path is not None:
        return JITModel.load(path)
    home_model = model_path()
    if home_model.is_file():
        return JITModel.load(home_model)
    ref = resources.files("aisre.gate").joinpath("default_model.json")
    try:
        doc = json.loads(ref.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"the packaged gate model is unreadable: {exc}", path="aisre/gate/default_model.json") from exc
    return JITModel.from_dict(doc, path="<packaged default_model.json>")


# --------------------------------------------------------------------------- stage 2


CFR_CLIP = (0.5, 4.0)
"""Bounds of the change-failure-rate odds multiplier."""
RECENT_FACTOR = 1.25
"""Odds multiplier per recent incident on the changed services (at most 4 count)."""
HOT_FACTORS = (1.5, 2.0)
"""Odds multipliers for some / at least half of the files touched by incident-causing changes."""
BLAST_EXPONENT = 0.3
"""Exponent of the blast-radius multiplier ``((1 + weighted) / 2) ** BLAST_EXPONENT``."""


@dataclass
class Adjustment:
    """A stage-2 odds multiplier and the reason it applies."""

    name: str
    factor: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "factor": round(self.factor, 4), "reason": self.reason}


def combine(
    p_jit: float,
    *,
    blast_weighted: float | None = None,
    failure_rate: float | None = None,
    prior_rate: float = 0.1,
    recent_incidents: int = 0,
    hot_share: float = 0.0,
) -> tuple[float, list[Adjustment]]:
    """Return ``(final probability, adjustments)``: the stage-1 probability times the documented
    odds multipliers (module docstring); an input left ``None``/0 contributes a factor of 1."""
    adj: list[Adjustment] = []
    if failure_rate is not None:
        odds = lambda q: q / (1.0 - q)  # noqa: E731
        f = float(np.clip(odds(min(max(failure_rate, 1e-6), 1 - 1e-6)) / odds(prior_rate), *CFR_CLIP))
        adj.append(Adjustment("failure_rate", f, f"change-failure rate {failure_rate:.0%} (prior {prior_rate:.0%})"))
    if recent_incidents > 0:
        adj.append(Adjustment("recent_incidents", RECENT_FACTOR ** min(int(recent_incidents), 4),
                              f"{recent_incidents} incident(s) caused by changes in the last 7 days"))  # fmt: skip
    if hot_share > 0:
        f = HOT_FACTORS[1] if hot_share >= 0.5 else HOT_FACTORS[0]
        adj.append(Adjustment("hot_files", f, f"{hot_share:.0%} of the files were touched by incident-causing changes"))
    if blast_weighted is not None:
        f = ((1.0 + max(blast_weighted, 0.0)) / 2.0) ** BLAST_EXPONENT
        adj.append(Adjustment("blast_radius", f, f"blast radius weight {blast_weighted:.1f}"))
    z = float(_logit(p_jit)) + sum(math.log(a.factor) for a in adj)
    return float(_sigmoid(z)), adj
