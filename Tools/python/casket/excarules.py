"""exca's write rules, which ``casket.CacheDict`` follows while the exca switch is on (docs/EXCA.md).

A pipeline switched to Casket must see what it saw on exca: the same errors for the values exca refuses,
and, for the values exca stores as JSON, the values exca reads back (exca encodes with ``orjson``, so a
``datetime`` comes back as its ISO text, an ``Enum`` as its value, ``nan`` as ``None``, a tuple as a list).
The rules are those of the exca in the process: 0.6 refuses what JSON cannot hold (``TypeError``); 0.5.12
to 0.5.x pickles it with a ``DeprecationWarning``. Both refuse empty arrays. Which leaves have a handler is
asked of exca's own ``DumpContext``, so handlers a pipeline registers are left to them. Without the
switch, casket keeps its own rules (values JSON cannot hold are pickled, FORMAT 6).
"""

from __future__ import annotations

import importlib.metadata
import sys
import typing as tp
import warnings

__all__ = ["CACHE_TYPE_ALIASES", "dialect", "prepare", "delete_needs_write"]

# exca's other names for casket's value types: 0.6.0 keeps MemmapArrayFile as a deprecated alias of
# MemmapArray; 0.5.x's NumpyMemmapArray loads a memory map, DataDict and AutoPickle a tree with pickled leaves
CACHE_TYPE_ALIASES = {"MemmapArrayFile": "MemmapArray", "NumpyMemmapArray": "MemmapArray", "DataDict": "Auto",
                      "AutoPickle": "Auto"}
ARRAY_HANDLERS = ("MemmapArray", "MemmapArrayFile", "ContiguousMemmapArray", "TorchTensor")


class _Dialect(tp.NamedTuple):
    version: tuple[int, int]
    context: tp.Any  # exca.cachedict.DumpContext: its handler registry and its type dispatch


_dialects: dict[int, tp.Optional[_Dialect]] = {}


def dialect() -> tp.Optional[_Dialect]:
    """The exca whose rules apply: the one installed in the process while the switch is on (exca 0.5.12
    and later, which have ``DumpContext``), else None."""
    from . import exca as switch

    if not switch.installed():
        return None
    try:
        import exca.cachedict as module
    except Exception:  # the switch is on in an environment without exca: casket's own rules
        return None
    if id(module) not in _dialects:
        context = getattr(module, "DumpContext", None)
        text = getattr(sys.modules["exca"], "__version__", "dev")
        try:
            text = importlib.metadata.version("exca") if text == "dev" else text
            version = tuple(int(p) for p in text.split(".")[:2])
        except (ValueError, importlib.metadata.PackageNotFoundError):
            version = (0, 6)
        _dialects[id(module)] = None if context is None else _Dialect((version[0], version[1]), context)
    return _dialects[id(module)]


def delete_needs_write() -> bool:
    """exca 0.6 deletes only inside ``write()``; 0.5.x deletes anywhere (``exca.steps`` relies on it)."""
    rules = dialect()
    return rules is None or rules.version >= (0, 6)


def _handler_name(rules: _Dialect, value: tp.Any) -> tp.Optional[str]:
    if hasattr(value, "__dump_info__"):
        return type(value).__name__
    find = getattr(rules.context, "_find_handler", None)  # 0.5.x warns of a legacy match, as in exca's write
    handler = find(type(value)) if find is not None else None
    return None if handler is None else handler.__name__


def _not_json(value: tp.Any) -> TypeError:
    # exca names the type of what its walk made: a plain dict, list or tuple for containers
    name = next((t.__name__ for t in (dict, list, tuple) if isinstance(value, t)), type(value).__name__)
    return TypeError(f"Value of type {name} is not JSON-serializable. Register a handler with "
                     f"@DumpContext.register(default_for={name}) or use cache_type='Pickle' explicitly.")


class _Walk:
    """exca's ``Auto`` walk: containers are walked, leaves with a handler kept for it, the rest is JSON."""

    def __init__(self, rules: _Dialect) -> None:
        self.rules = rules
        self.handled = 0
        import orjson

        self.orjson = orjson

    def json(self, value: tp.Any) -> tp.Any:
        """What exca reads back for a JSON value; exca's TypeError when orjson cannot encode it."""
        try:
            return self.orjson.loads(self.orjson.dumps(value))
        except TypeError:  # orjson.JSONEncodeError is one
            raise _not_json(value) from None

    def tree(self, value: tp.Any) -> tp.Any:
        """The value with exca's JSON rendering applied; handled leaves untouched. Raises on what exca refuses
        in the tree (a '#type' key exca does not know, an empty array); JSON is checked by the caller."""
        if isinstance(value, (int, float, str, bool, type(None))):
            return value
        if isinstance(value, dict):
            if "#type" in value and not _known(self.rules, str(value["#type"])):
                raise ValueError(f"'#type' is a reserved key in Auto dicts. Found #type={value['#type']!r} which "
                                 "is not a registered handler.")
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.tree(v) for v in value]
        handler = _handler_name(self.rules, value)
        if handler is None:
            return value
        self.handled += 1
        if handler in ARRAY_HANDLERS:
            _check_array(value)
        return _Handled(value)


class _Handled(tp.NamedTuple):
    value: tp.Any


def _check_array(value: tp.Any) -> None:
    shape = tuple(getattr(value, "shape", ()))
    size = 1
    for n in shape:
        size *= int(n)
    if not size:
        raise ValueError(f"Cannot dump data with no size: shape={shape}")


def _placeholders(value: tp.Any) -> tp.Any:
    if isinstance(value, _Handled):
        return None
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def _render(walk: _Walk, value: tp.Any) -> tp.Any:
    if isinstance(value, _Handled):
        return value.value
    if isinstance(value, dict):
        return {k: _render(walk, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(walk, v) for v in value]
    return walk.json(value)


def _forced(rules: _Dialect, value: tp.Any, cache_type: str) -> tp.Any:
    """exca's refusals for a ``cache_type`` given by the caller, with exca's errors."""
    if not _known(rules, cache_type):
        raise KeyError(cache_type)  # what exca raises for a cache_type it does not know
    if cache_type in ("MemmapArray", "MemmapArrayFile", "ContiguousMemmapArray"):
        if not hasattr(value, "__array__"):
            raise TypeError(f"Expected numpy array but got {type(value)}")
        _check_array(value)
    elif cache_type == "TorchTensor":
        import torch  # as exca: without torch, its ModuleNotFoundError

        if not isinstance(value, torch.Tensor):
            raise TypeError(f"Expected torch Tensor but got {value} ({type(value)})")
        _check_array(value)
    elif cache_type == "NumpyArray":
        import numpy as np

        if not isinstance(value, np.ndarray):
            raise TypeError(f"Expected numpy array but got {value} ({type(value)})")
    elif cache_type in ("PandasDataFrame", "ParquetPandasDataFrame"):
        pd = sys.modules.get("pandas")
        if pd is None or not isinstance(value, pd.DataFrame):
            raise TypeError(f"Only supports pd.DataFrame (got {type(value)})")
    elif cache_type == "Json":
        return _Walk(rules).json(value)
    return value


def _known(rules: _Dialect, name: str) -> bool:
    """Whether exca knows the handler ``name`` (0.5.x also its older ``DumperLoader`` names: String...)."""
    try:
        rules.context._lookup(name)
    except KeyError:
        return False
    return True


def prepare(value: tp.Any, cache_type: tp.Optional[str]) -> tuple[tp.Any, tp.Optional[str]]:
    """The value and cache_type to encode, after exca's rules (while the switch is on): raises what exca
    raises for the value, renders its JSON part as exca reads it back, and maps exca's other type names."""
    rules = dialect()
    if rules is not None:
        if cache_type is not None and cache_type != "Auto":
            value = _forced(rules, value, cache_type)
        else:
            value, cache_type = _auto(rules, value, cache_type)
    return value, CACHE_TYPE_ALIASES.get(cache_type, cache_type) if cache_type is not None else None


def _auto(rules: _Dialect, value: tp.Any, cache_type: tp.Optional[str]) -> tuple[tp.Any, tp.Optional[str]]:
    walk = _Walk(rules)
    tree = walk.tree(value)
    if isinstance(tree, _Handled):
        return value, cache_type  # a single value with a handler: the handler's (casket's type) rules
    try:
        dumped = walk.orjson.dumps(_placeholders(tree))
    except TypeError:
        if rules.version >= (0, 6):
            raise _not_json(value) from None
        warnings.warn("Auto: result is not JSON-serializable, falling back to Pickle (deprecated). Register "
                      "handlers for non-JSON types or use cache_type='AutoPickle'.", DeprecationWarning, stacklevel=4)
        # exca pickles the whole tree: so does casket when no handler needs a blob of its own
        return value, ("Pickle" if not walk.handled else cache_type)
    return (walk.orjson.loads(dumped) if not walk.handled else _render(walk, tree)), cache_type
