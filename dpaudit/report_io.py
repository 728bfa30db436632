"""Reading and writing ``audit.json``: the bounds, the JSON Schema check, cross-field rules, load and dump.

An ``audit.json`` may come from someone else, so the loader bounds it before anything walks it:
at most :data:`MAX_REPORT_BYTES`, nesting depth, array, string and integer bounds
(:mod:`dpaudit.input_limits`), the schema's ``maxItems``/``maxLength`` caps, and cross-field
consistency (histogram and ROC lengths). NaN and ±inf are rejected, so a NaN metric can never
reach the gate as a number. Every violation is one line (exit 2).

The dataclasses the file is parsed into are in :mod:`dpaudit.report_schema`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from dpaudit.errors import DataError
from dpaudit.input_limits import JsonLimits, check_json_limits, path_str, read_capped
from dpaudit.report_schema import SCHEMA_VERSION, AuditReport
from dpaudit.sanitize import UNSAFE_CHARS, clean_text

__all__ = ["MAX_REPORT_BYTES", "REPORT_LIMITS", "ARRAY_CAPS", "load_schema", "validate_report", "load_report",
           "dump_report"]

#: Largest ``audit.json`` the loader reads (bytes).
MAX_REPORT_BYTES = 50 * 2**20

#: Generic bounds on every report; the schema sets tighter per-field caps.
REPORT_LIMITS = JsonLimits(max_depth=64, max_items=10_000, max_chars=10_000, max_abs_float=1e15)

#: Array caps (items), checked before the schema so an oversized array is refused at once.
ARRAY_CAPS = {"histogram": 1001, "roc": 1000, "epsilon_history": 10_000, "profile": 1000}

_SCHEMA_CACHE: dict[str, Any] = {}


def load_schema() -> dict[str, Any]:
    """Return the bundled JSON Schema (draft 2020-12) for audit.json 1.0."""
    if "1.0" not in _SCHEMA_CACHE:
        name = f"audit-{SCHEMA_VERSION}.json"
        text = resources.files("dpaudit").joinpath("schema", name).read_text("utf-8")
        _SCHEMA_CACHE["1.0"] = json.loads(text)
    return _SCHEMA_CACHE["1.0"]


def _cap_errors(data: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """The first array over :data:`ARRAY_CAPS`, found without walking its items."""
    def too_long(section: Any, keys: tuple[str, ...], cap: int, where: tuple[Any, ...]):
        if not isinstance(section, dict):
            return None
        for key in keys:
            value = section.get(key)
            if isinstance(value, list) and len(value) > cap:
                return (*where, key), f"{len(value)} items (at most {cap})"
        return None

    privacy = data.get("privacy")
    if isinstance(privacy, dict):
        for field, keys in (("epsilon_history", ("steps", "epsilons")),
                            ("profile", ("epsilons", "deltas"))):
            found = too_long(privacy.get(field), keys, ARRAY_CAPS[field], ("privacy", field))
            if found:
                return found
    reference = data.get("reference")
    ref_attacks = reference.get("attacks") if isinstance(reference, dict) else None
    for where, attacks in ((("attacks",), data.get("attacks")), (("reference", "attacks"), ref_attacks)):
        for i, attack in enumerate(attacks if isinstance(attacks, list) else ()):
            if not isinstance(attack, dict):
                continue
            for field, keys in (("histogram", ("bin_edges", "in_counts", "out_counts")),
                                ("roc", ("fpr", "tpr"))):
                found = too_long(attack.get(field), keys, ARRAY_CAPS[field], (*where, i, field))
                if found:
                    return found
    return None


def _consistency_errors(data: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """Cross-field rules a schema cannot state: paired arrays of equal length, bins + 1 edges."""
    privacy, reference = data["privacy"], data.get("reference")
    pairs = [(("privacy", "epsilon_history"), privacy["epsilon_history"], "steps", "epsilons"),
             (("privacy", "profile"), privacy["profile"], "epsilons", "deltas")]
    families = [(("attacks",), data["attacks"])]
    if reference is not None:  # the reference's attacks are drawn by the same renderers
        families.append((("reference", "attacks"), reference["attacks"]))
        stated, measured = data["utility"].get("non_private_reference"), reference["utility"]["value"]
        if stated != measured:
            return ("utility", "non_private_reference"), (f"{stated} is not the reference's held-out "
                                                          f"{reference['utility']['metric']} {measured}")
    for prefix, attacks in families:
        for i, attack in enumerate(attacks):
            pairs.append(((*prefix, i, "roc"), attack["roc"], "fpr", "tpr"))
            pairs.append(((*prefix, i, "histogram"), attack["histogram"], "in_counts", "out_counts"))
    canaries = data.get("canaries")
    if isinstance(canaries, dict) and canaries["guesses_in"] + canaries["guesses_out"] > canaries["count"]:
        return ("canaries",), (f"{canaries['guesses_in']} + {canaries['guesses_out']} guesses on "
                               f"{canaries['count']} canaries")
    for where, section, a, b in pairs:
        if section is not None and len(section[a]) != len(section[b]):
            return where, f"{a} has {len(section[a])} entries but {b} has {len(section[b])}"
    for prefix, attacks in families:
        for i, attack in enumerate(attacks):
            edges, n_bins = attack["histogram"]["bin_edges"], len(attack["histogram"]["in_counts"])
            if (n_bins or edges) and len(edges) != n_bins + 1:
                return (*prefix, i, "histogram"), f"{len(edges)} bin edges for {n_bins} bins (need bins + 1)"
    return None


def _sign_off_errors(data: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """A sign-off string holding a control, bidi or line-separator character (it is printed for signature)."""
    sign_off = data.get("sign_off")
    for key, value in (sign_off or {}).items():
        if isinstance(value, str) and UNSAFE_CHARS.search(value):
            return ("sign_off", key), "holds a control, bidi or line-break character; give it as one plain line"
    return None


def validate_report(data: dict[str, Any]) -> None:
    """Check a report dict: bounds, ``audit-1.0.json``, NaN/±inf anywhere, cross-field rules, sign-off text.

    Raises:
        DataError: one line naming the first failing path, e.g.
            ``"audit report is invalid at attacks/0/auc: 'x' is not of type 'number', 'null'"``.
    """
    import jsonschema

    if not isinstance(data, dict):
        raise DataError(f"audit report must be a JSON object, got {type(data).__name__}.")
    found = _cap_errors(data)  # before anything iterates a 1M-item array
    if found is not None:
        raise DataError(f"audit report is invalid at {path_str(found[0])}: {found[1]}.")
    check_json_limits(data, what="audit report", error=DataError, limits=REPORT_LIMITS)
    if "validator" not in _SCHEMA_CACHE:
        _SCHEMA_CACHE["validator"] = jsonschema.Draft202012Validator(load_schema())
    validator = _SCHEMA_CACHE["validator"]
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        message = clean_text(" ".join(error.message.split()), max_len=200)
        raise DataError(f"audit report is invalid at {path_str(error.absolute_path)}: {message}")
    found = _consistency_errors(data) or _sign_off_errors(data)
    if found is not None:
        raise DataError(f"audit report is invalid at {path_str(found[0])}: {found[1]}.")


class _NonFiniteLiteral(ValueError):
    """A ``NaN``/``Infinity`` literal in the JSON text."""


def _reject_constant(name: str) -> float:
    raise _NonFiniteLiteral(name)


def load_report(path: str | Path) -> AuditReport:
    """Read, bound, validate and parse an ``audit.json``.

    Raises:
        DataError: one line for a missing, unreadable or oversized file, invalid or truncated
            JSON, a NaN/Infinity literal, nesting too deep, an unbounded integer, or a schema or
            consistency violation (naming the failing path).
    """
    path = Path(path)
    try:
        raw = read_capped(path, MAX_REPORT_BYTES, what="audit report", error=DataError)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"audit report not found: {path}; run `dpaudit audit` first or pass the "
                        "right path.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read audit report {path}: {clean_text(err, max_len=300)}") from None
    if not text.strip():
        raise DataError(f"audit report {path} is empty; rerun `dpaudit audit`.")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise DataError(f"audit report {path} is not valid JSON (truncated?): {err.msg} at line "
                        f"{err.lineno} column {err.colno}; rerun `dpaudit audit`.") from None
    except _NonFiniteLiteral as err:
        raise DataError(f"audit report {path} contains {err}, which is not a finite number; undefined "
                        "metrics must be null with status 'inconclusive'.") from None
    except RecursionError:
        raise DataError(f"audit report {path} is nested too deeply (at most "
                        f"{REPORT_LIMITS.max_depth} levels).") from None
    except ValueError as err:  # e.g. an integer literal of more than 4300 digits
        raise DataError(f"audit report {path} is not a valid report: {clean_text(err, max_len=200)} "
                        "(integers must be bounded).") from None
    if not isinstance(data, dict):
        raise DataError(f"audit report {path} must hold a JSON object, got {type(data).__name__}.")
    try:
        validate_report(data)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    return AuditReport.from_dict(data)


def dump_report(report: AuditReport, path: str | Path) -> Path:
    """Validate ``report`` and write it as JSON (``allow_nan=False``); returns the path."""
    from dpaudit.fileio import write_json_atomic

    data = report.to_dict()
    validate_report(data)
    return write_json_atomic(path, data, sort_keys=False, private=True)
