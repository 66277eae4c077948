"""Compose a training config from YAML groups, a preset and command-line overrides.

Layout of ``configs/`` (lightning-hydra-template style, without Hydra)::

    config.yaml            root: ``defaults`` (the option chosen in each group) + shared keys
    task/<name>.yaml       one file per task (the catalogue, also from $MEDAI_TASKS_DIR: see
                           :mod:`medai_lab.catalogue`); its keys land under ``task``
    model/ optim/ data/ trainer/ eval/
    preset/<name>.yaml     global overrides: only keys that exist, never a copy of a group

A preset may ``extends`` another preset, choose group options in its own ``defaults``, and hold
conditional blocks keyed ``"<group>/<option>"`` (global-shaped, applied only while that option is
selected) for settings that exist in one option only, e.g. ``"model/unet": {model: {...}}``.

Order (last wins): root, group files, preset (its parents first, then its conditional blocks),
command-line overrides. Overrides are ``key=value``, ``--key value`` or ``--key=value``; a key
without a dot that names a group switches the option (``model=segresnet``). Values are parsed as
YAML (``5``, ``1e-3``, ``[64, 64, 32]``, ``null``). Keys that do not exist are an error, and so
is a value of the wrong kind: the merged dict is validated once into the typed, frozen views of
:mod:`medai_lab.tasks.schema`.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab import catalogue
from medai_lab.errors import MedaiError

if TYPE_CHECKING:  # built on first compose(): importing the package stays light
    from medai_lab.tasks.schema import TrainConfig

__all__ = [
    "CONFIG_DIR", "GROUPS", "PRESETS", "ConfigError", "TrainConfig", "compose", "flatten",
    "get_key", "options", "parse_overrides", "parse_value", "set_key",
]  # fmt: skip

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
GROUPS: tuple[str, ...] = ("task", "model", "optim", "data", "trainer", "eval")
PRESETS: tuple[str, ...] = ("smoke", "cpu", "gpu", "ddp")


class ConfigError(MedaiError):
    """A config key, group option, preset or override value is not valid."""


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        from medai_lab.tasks.schema import TrainConfig

        return TrainConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def options(group: str) -> list[str]:
    """Names of the YAML files available in a group folder (``"preset"`` included).

    ``task`` lists the catalogue, user folders from ``$MEDAI_TASKS_DIR`` included.
    """
    if group == "task":
        return list(catalogue.names())
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def compose(task: str, preset: str | None = "cpu", overrides: Sequence[str] = ()) -> TrainConfig:
    """Resolve the config of one run.

    Parameters
    ----------
    task
        ``lung``, ``liver``, ``heart`` or any other task of :mod:`medai_lab.catalogue`.
    preset
        ``smoke``, ``cpu``, ``gpu``, ``ddp`` or None for the root defaults alone.
    overrides
        ``["trainer.max_epochs=5", "--data.batch_size", "4", "model=segresnet"]``.

    Returns
    -------
    TrainConfig
        Typed, frozen and validated (``cfg.trainer.max_epochs``); ``cfg.as_dict()`` is the plain
        nested dict (YAML types only). ``preset`` and ``choices`` (group -> option) are recorded
        so a logged config says how it was built.
    """
    root = _load(CONFIG_DIR / "config.yaml")
    choices: dict[str, str] = dict(root.pop("defaults", {}) or {})
    choices["task"] = task
    chain = _preset_chain(preset) if preset not in (None, "none") else []
    for _, body in chain:
        choices.update(body.get("defaults", {}) or {})
    pairs = parse_overrides(overrides)
    dotted = []
    for key, value in pairs:
        if "." not in key and key in GROUPS:
            choices[key] = str(value)
        else:
            dotted.append((key, value))

    cfg: dict[str, Any] = {"preset": preset if chain else None}
    cfg.update(root)
    for group in GROUPS:
        option = choices.get(group)
        if option is None:
            raise ConfigError(f"no {group} chosen; pick one of: {', '.join(options(group))}")
        path = _group_file(group, option)
        if path is None:
            what = "task" if group == "task" else f"{group} option"
            raise ConfigError(
                f"unknown {what} {option!r}; choose one of: {', '.join(options(group))}"
            )
        cfg[group] = _load(path)
        if group == "task":
            try:
                catalogue.get(option)  # labels, modality and phantom recipe are valid
            except MedaiError as exc:
                raise ConfigError(str(exc)) from None
    cfg["choices"] = {g: choices[g] for g in GROUPS}

    for name, body in chain:
        plain = {k: v for k, v in body.items() if k not in ("defaults", "extends") and "/" not in k}
        _merge(cfg, plain, where=f"preset {name!r}")
        for key, block in body.items():
            if "/" in key:
                group, option = key.split("/", 1)
                if group not in GROUPS or option not in options(group):
                    raise ConfigError(f"preset {name!r}: conditional block {key!r} names no option")
                if choices[group] == option:
                    _merge(cfg, block, where=f"preset {name!r} ({key})")
    for key, value in dotted:
        set_key(cfg, key, value)
    from medai_lab.tasks.schema import TrainConfig

    return TrainConfig.from_dict(cfg)


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """``key=value`` / ``--key value`` / ``--key=value`` tokens -> ``[(key, parsed value)]``."""
    tokens = list(overrides)
    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(tokens):
        tok = str(tokens[i])
        if tok.startswith("--"):
            body = tok[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            else:
                if i + 1 >= len(tokens):
                    raise ConfigError(f"override {tok} has no value")
                key, raw = body, str(tokens[i + 1])
                i += 1
        elif "=" in tok:
            key, raw = tok.split("=", 1)
        else:
            raise ConfigError(f"cannot read override {tok!r}: use key=value or --key value")
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override key {key!r}")
        pairs.append((key, parse_value(raw)))
        i += 1
    return pairs


def parse_value(raw: str) -> Any:
    """A YAML value; ``1e-3`` is a float here (YAML 1.1 would keep it a string)."""
    import yaml

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse value {raw!r}: {exc}") from None
    if isinstance(value, str):
        try:
            return int(value) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            return value
    return value


def get_key(cfg: Mapping[str, Any], dotted: str) -> Any:
    """Value at ``a.b.c``; :class:`ConfigError` naming the key when it does not exist."""
    node: Any = cfg
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            raise _unknown(cfg, dotted, ".".join(parts[:i]))
        node = node[part]
    return node


def set_key(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Set an existing key ``a.b.c``; sections can only be replaced by mappings."""
    get_key(cfg, dotted)  # the whole path must exist; the error names the full key
    parts = dotted.split(".")
    parent = get_key(cfg, ".".join(parts[:-1])) if len(parts) > 1 else cfg
    old = parent[parts[-1]]
    if isinstance(old, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {dotted!r} is a section; set one of its keys instead")
        _merge(old, value, where="override", prefix=dotted + ".")
    else:
        parent[parts[-1]] = copy.deepcopy(value)


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept whole), e.g. for logging as params."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


# --- internals -------------------------------------------------------------------------------


def _group_file(group: str, option: str) -> Path | None:
    if group == "task":
        return catalogue.find(option)
    path = CONFIG_DIR / group / f"{option}.yaml"
    return path if path.is_file() else None


def _load(path: Path) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return data


def _preset_chain(preset: str) -> list[tuple[str, dict[str, Any]]]:
    """The preset and the presets it extends, most general first."""
    chain: list[tuple[str, dict[str, Any]]] = []
    name: str | None = preset
    while name is not None:
        path = CONFIG_DIR / "preset" / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
        if any(n == name for n, _ in chain):
            raise ConfigError(f"preset {name!r} extends itself")
        body = _load(path)
        chain.insert(0, (name, body))
        name = body.get("extends")
    return chain


def _merge(dst: dict[str, Any], src: Mapping[str, Any], where: str, prefix: str = "") -> None:
    """Deep-merge ``src`` into ``dst``; every key of ``src`` must already exist in ``dst``."""
    for key, value in src.items():
        name = f"{prefix}{key}"
        if key not in dst:
            close = difflib.get_close_matches(str(key), [str(k) for k in dst], n=1)
            hint = f" (did you mean {prefix}{close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown config key {name!r}{hint}")
        if isinstance(dst[key], dict) and isinstance(value, Mapping):
            _merge(dst[key], value, where, prefix=name + ".")
        elif isinstance(dst[key], dict):
            raise ConfigError(f"{where}: config key {name!r} is a section, not a value")
        else:
            dst[key] = copy.deepcopy(value)


def _unknown(cfg: Mapping[str, Any], dotted: str, parent: str) -> ConfigError:
    """Error for a missing key, suggesting the closest existing key under the same parent."""
    try:
        node = get_key(cfg, parent) if parent else cfg
    except ConfigError:
        node = None
    hint = ""
    if isinstance(node, Mapping):
        last = dotted.split(".")[len(parent.split(".")) if parent else 0]
        close = difflib.get_close_matches(last, [str(k) for k in node], n=1)
        if close:
            hint = f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)"
    return ConfigError(f"unknown config key {dotted!r}{hint}")
