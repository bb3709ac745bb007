"""``[models]`` of a run configuration: spec names and files resolved, labels, the selection rule.

Kept apart from :mod:`forecast.config` (the sections and the loader) so each stays small.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.exceptions import ConfigError


def check_models(m: dict[str, Any], base: Path, probs: list[str], defaults: Any) -> None:
    """Resolve and load every spec of ``[models]`` (``defaults``: the section's defaults); the
    baseline joins the candidates (first) when missing; ``selection`` is resolved."""
    from forecast.combine import load_model  # every spec type known (ensemble files too)

    wanted = [("baseline", m.get("baseline", defaults.baseline))]
    wanted += [("candidates", c) for c in m.get("candidates", defaults.candidates)]
    found: list[str | Path] = []
    for key, name in wanted:
        try:
            found.append(resolve_model(name, base))
            load_model(found[-1])
        except ConfigError as exc:
            probs.extend(f"[models] {key}: {line}" for line in exc.lines())
    if len(found) < len(wanted):
        return
    by_label: dict[str, str | Path] = {}
    for r in found:
        if by_label.setdefault(label(r), r) != r:
            probs.append(f"[models] two specs share the label '{label(r)}' ({by_label[label(r)]} and {r}); "
                         f"rename one file.")
    baseline, cands = found[0], found[1:]
    m["candidates"] = tuple(dict.fromkeys(([] if baseline in cands else [baseline]) + cands))
    m["baseline"] = label(baseline)
    if m.get("selection") == "ensemble" and len(m["candidates"]) < 2:
        probs.append("[models] selection 'ensemble' needs at least two candidates.")
    has_auto = "auto" in {label(c) for c in m["candidates"]}
    if "selection" not in m:  # explicit candidates without the auto model choose as before
        m["selection"] = "auto" if has_auto else "series"
    elif m["selection"] == "auto" and not has_auto:
        probs.append("[models] selection 'auto' uses the auto model for every series: add \"auto\" to "
                     "candidates, or choose another selection.")


def resolve_model(name: str | Path, base: Path) -> str | Path:
    """A spec name stays a name unless ``<config folder>/models/<name>.toml`` exists; paths become absolute."""
    from forecast.specs import spec_path

    if is_file(name):
        return spec_path((base / Path(name).expanduser()).resolve()).resolve()
    local = base / "models" / f"{name}.toml"
    if local.is_file():
        return local.resolve()
    spec_path(name)
    return str(name)


def is_file(name: str | Path) -> bool:
    return isinstance(name, Path) or str(name).endswith(".toml") or any(c in str(name) for c in "/\\")


def label(spec: str | Path) -> str:
    return Path(spec).stem if is_file(spec) else str(spec)
