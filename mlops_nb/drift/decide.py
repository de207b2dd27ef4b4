"""Turning statistics into verdicts: the thresholds (:data:`DEFAULT_CONFIG`) and the rules that
make a column ``ok``, ``warn`` or ``drift``, each with a one-line reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_nb.drift.report import ColumnDrift
from mlops_nb.errors import InvalidValue

DEFAULT_CONFIG: dict[str, float] = {
    "psi_warn": 0.1,
    "psi_drift": 0.25,
    "distance_drift": 0.1,
    "dataset_share": 0.5,
    "small_sample": 1000,
    "alpha": 0.05,
    "missing_warn": 0.1,
    "threads": 2,
    "sketch_rows": 100_000,
}


def resolve_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """:data:`DEFAULT_CONFIG` updated with ``config``; an unknown key raises ``InvalidValue`` naming the known ones."""
    cfg = dict(DEFAULT_CONFIG)
    if config:
        unknown = set(config) - set(DEFAULT_CONFIG)
        if unknown:
            raise InvalidValue(
                f"unknown drift config key(s) {', '.join(sorted(map(repr, unknown)))}; "
                f"known keys: {', '.join(DEFAULT_CONFIG)}"
            )
        cfg.update(config)
    return cfg


Decision = tuple[str, str, "float | None", str]
"""``(verdict, statistic, value, reason)``, turned into a :class:`ColumnDrift` by :func:`column_result`."""


def numeric_decision(
    psi_value: float, w_norm: float, test: dict[str, Any] | None, cfg: Mapping[str, Any]
) -> Decision:
    """PSI and the normalised Wasserstein distance decide, unless a KS ``test`` ran (small reference)."""
    measured = f"PSI {psi_value:.3f}, normalised Wasserstein {w_norm:.3f}"
    if test is not None and test.get("p_value") is not None:
        past = psi_value >= cfg["psi_warn"] or w_norm >= cfg["distance_drift"]
        return _test_decision("KS", "ks_p_value", test, past=past, measured=measured)
    if psi_value >= cfg["psi_drift"]:
        return "drift", "psi", psi_value, f"PSI {psi_value:.3f} >= {cfg['psi_drift']}"
    if w_norm >= cfg["distance_drift"]:
        return "drift", "wasserstein_norm", w_norm, f"normalised Wasserstein {w_norm:.3f} >= {cfg['distance_drift']}"
    if psi_value >= cfg["psi_warn"]:
        return "warn", "psi", psi_value, f"PSI {psi_value:.3f} >= {cfg['psi_warn']}"
    return "ok", "psi", psi_value, f"{measured}: below {cfg['psi_warn']} and {cfg['distance_drift']}"


def categorical_decision(js: float, test: dict[str, Any] | None, cfg: Mapping[str, Any]) -> Decision:
    """The Jensen-Shannon distance decides, unless a chi-squared ``test`` ran (small reference)."""
    limit = cfg["distance_drift"]
    if test is not None and test.get("p_value") is not None:
        return _test_decision(
            "chi-squared", "chi2_p_value", test, past=js >= limit, measured=f"Jensen-Shannon {js:.3f}"
        )
    if js >= limit:
        return "drift", "jensen_shannon", js, f"Jensen-Shannon {js:.3f} >= {limit}"
    return "ok", "jensen_shannon", js, f"Jensen-Shannon {js:.3f} < {limit}"


def _test_decision(name: str, statistic: str, test: dict[str, Any], *, past: bool, measured: str) -> Decision:
    """Small reference: the test decides. On a few hundred rows the distances of two samples of
    one distribution often pass their thresholds by chance, so they are reported, never a verdict."""
    p, limit = test["p_value"], test["alpha_corrected"]
    if test["rejected"]:
        return (
            "drift",
            statistic,
            p,
            f"{name} p={p:.3g} < {limit:.3g} (alpha {test['alpha']} / {test['bonferroni_m']} tests)",
        )
    if past:
        return "ok", statistic, p, f"{name} p={p:.3g} >= {limit:.3g} ({measured} is within sampling noise here)"
    return "ok", statistic, p, f"{name} p={p:.3g} >= {limit:.3g}"


def column_result(
    column: str, kind: str, details: dict[str, Any], cfg: Mapping[str, Any], decision: Decision
) -> ColumnDrift:
    """Build the result; an ``ok`` becomes ``warn`` when the missing share moved by ``missing_warn``."""
    verdict, statistic, value, reason = decision
    delta = details.get("missing_delta", 0.0)
    if verdict == "ok" and abs(delta) >= cfg["missing_warn"]:
        verdict, statistic, value = "warn", "missing_share", delta
        shares = f"{details['missing_ref_share']:.1%} to {details['missing_cur_share']:.1%}"
        reason = f"missing share moved from {shares} ({reason})"
    details["reason"] = reason
    return ColumnDrift(column, kind, statistic, None if value is None else float(value), verdict, details)


def missing_details(ref: Mapping[str, Any], missing: int, total: int) -> dict[str, Any]:
    """Value counts and missing shares on both sides: the ``details`` every column verdict starts from."""
    ref_n = int(ref.get("n", 0))
    ref_share = ref.get("missing", 0) / ref_n if ref_n else 0.0
    cur_share = missing / total if total else 0.0
    return {
        "n_ref": ref_n - int(ref.get("missing", 0)),
        "n_cur": total - missing,
        "missing_ref_share": ref_share,
        "missing_cur_share": cur_share,
        "missing_delta": cur_share - ref_share,
    }


def empty_decision(ref: Mapping[str, Any], valid: int, total: int, details: dict[str, Any]) -> Decision | None:
    """The decision when either side has no values to compare, else ``None``."""
    ref_valid = int(ref.get("n", 0)) - int(ref.get("missing", 0))
    if valid > 0 and ref_valid > 0:
        return None
    delta = details["missing_delta"]
    if total == 0:
        return "warn", "none", None, "no fresh rows to compare"
    if ref_valid == 0 and valid == 0:
        return "ok", "none", None, "no values in the reference nor in the fresh data"
    if ref_valid == 0:
        return (
            "drift",
            "missing_share",
            delta,
            f"the reference had no values in this column but the fresh data has {valid}",
        )
    ref_share = details["missing_ref_share"]
    return "drift", "missing_share", delta, f"all {total} fresh values are missing (reference: {ref_share:.0%} missing)"
