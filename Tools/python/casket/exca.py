"""Casket as exca's storage engine: ``install()`` makes exca build ``casket.CacheDict`` where it builds its own.

exca looks ``CacheDict`` up in several modules (``exca.cachedict``, ``exca.cachedict.core``, ``exca.map``,
``exca.steps.backends`` through ``exca.cachedict.CacheDict``, ``exca.chain.steps`` in 0.5.x, and the
``isinstance`` checks in them). Rather than a list of names that drifts with exca's versions, every
attribute of an ``exca.*`` module that is exca's ``CacheDict`` class is replaced: the modules already
imported at once, the others as they are imported (a ``sys.meta_path`` finder). So the switch can be
applied at interpreter start, before exca is imported (``CASKET_EXCA=1``, through ``casket_exca.pth``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
import typing as tp

__all__ = ["install", "uninstall", "installed", "install_from_environment", "environment_settings", "store_settings"]

_lock = threading.RLock()
_finder: tp.Optional["_ExcaFinder"] = None
# (module name, attribute, the value it had): what uninstall() puts back
_patched: list[tuple[str, str, tp.Any]] = []
_original: list[type] = []  # exca's own CacheDict class, once seen


def _casket_class() -> type:
    from .cachedict import CacheDict

    return CacheDict


def _is_exca_cachedict(value: tp.Any) -> bool:
    return (
        isinstance(value, type)
        and value.__name__ == "CacheDict"
        and getattr(value, "__module__", "").split(".")[0] == "exca"
    )


def _patch_module(module: types.ModuleType) -> None:
    """Replaces every attribute of ``module`` that is exca's CacheDict (aliases such as 0.5.x's
    ``CacheDictWriter = CacheDict`` included)."""
    name = getattr(module, "__name__", "")
    if name != "exca" and not name.startswith("exca."):
        return
    if name == "exca.map":
        from .excamap import patch_map_module

        patch_map_module(module)  # compute once through Casket's claims
    ours = _casket_class()
    with _lock:
        done = {(m, a) for m, a, _ in _patched}
        for attr, value in list(vars(module).items()):
            if value is ours and _original and (name, attr) not in done and attr.startswith("CacheDict"):
                # imported from a module patched earlier (``from .core import CacheDict``): exca's class was there
                _patched.append((name, attr, _original[0]))
            elif _is_exca_cachedict(value) and value is not ours:
                if not _original:
                    _original.append(value)
                _patched.append((name, attr, value))
                setattr(module, attr, ours)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it made."""

    def __init__(self, loader: tp.Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> tp.Optional[types.ModuleType]:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        _patch_module(module)

    def __getattr__(self, name: str) -> tp.Any:  # get_source, get_code, is_package... for tools
        return getattr(self._loader, name)


class _ExcaFinder(importlib.abc.MetaPathFinder):
    """Finds ``exca`` and its submodules through the finders after it (the path finder, or an editable
    install's finder), and gives their spec a patching loader."""

    def find_spec(
        self, fullname: str, path: tp.Any = None, target: tp.Optional[types.ModuleType] = None
    ) -> tp.Optional[importlib.machinery.ModuleSpec]:
        if fullname != "exca" and not fullname.startswith("exca."):
            return None
        finders = sys.meta_path
        after = finders[finders.index(self) + 1:] if self in finders else finders
        for finder in after:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PatchingLoader(spec.loader)
            return spec  # type: ignore[no-any-return]
        return None


def installed() -> bool:
    """True while the switch is on in this process."""
    return _finder is not None


ENV_PREFIX = "CASKET_EXCA_"  # CASKET_EXCA_COMPRESSION, CASKET_EXCA_DURABILITY, CASKET_EXCA_PACK_MAX, ...
# the settings of the stores the switch creates, or the error that refused them (raised at store creation)
_settings: dict[str, tp.Any] = {}
_settings_error: tp.Optional[Exception] = None


def environment_settings() -> dict[str, tp.Any]:
    """The store settings of the ``CASKET_EXCA_<SETTING>`` variables (unset or empty: ``casket init``'s
    default), checked with casket.json's rules; a refusal names the variable. ``inline_max``, ``chunks_min``,
    ``pack_max`` and ``pack_size`` are read as casket.json's JSON integers (``4096``; not ``4096.0``, ``0x10``
    or ``4k``)."""
    import json
    import os

    from .store import STORE_SETTINGS, StoreError, setting_rule

    out: dict[str, tp.Any] = {}
    for name in STORE_SETTINGS:
        variable = ENV_PREFIX + name.upper()
        text = os.environ.get(variable, "")
        if not text:
            continue
        value: tp.Any = text
        if name in ("inline_max", "chunks_min", "pack_max", "pack_size"):
            try:
                value = json.loads(text)
            except ValueError:
                pass
        must = setting_rule(name, value)
        if must is not None:
            raise StoreError(f"{variable}={text!r} is not a valid {name} for the stores the exca switch creates: it"
                             f" must be {must}, as in casket.json (docs/FORMAT.md 2, docs/EXCA.md)", "invalid_config")
        out[name] = value
    return out


def store_settings() -> dict[str, tp.Any]:
    """The settings ``casket.CacheDict`` creates a store with while the switch is on ({} when off: ``casket
    init``'s defaults). Raises the error that refused the ``CASKET_EXCA_<SETTING>`` variables, if any."""
    if _finder is None:
        return {}
    if _settings_error is not None:
        raise _settings_error
    return dict(_settings)


def install(settings: tp.Optional[tp.Mapping[str, tp.Any]] = None) -> None:
    """Makes every place where exca looks ``CacheDict`` up use ``casket.CacheDict``, in the exca modules
    already imported and in those imported later. Idempotent.

    ``settings`` (``compression``, ``durability``, ``inline_max``, as in casket.json) are those of the stores
    the switch creates; they override the ``CASKET_EXCA_<SETTING>`` variables. A store that exists keeps its
    own. An invalid setting or variable raises a ``StoreError`` naming it, and the switch stays as it was."""
    from .store import check_store_settings

    chosen = {**environment_settings(), **check_store_settings(settings or {}, "casket.exca.install(settings=...)")}
    _switch_on(chosen, None)


def _switch_on(settings: dict[str, tp.Any], error: tp.Optional[Exception]) -> None:
    global _finder, _settings, _settings_error
    with _lock:
        _settings, _settings_error = settings, error
        if _finder is None:
            _finder = _ExcaFinder()
            sys.meta_path.insert(0, _finder)
        for name, module in sorted(sys.modules.items()):
            if module is not None and (name == "exca" or name.startswith("exca.")):
                _patch_module(module)


def uninstall() -> None:
    """Puts back exactly what ``install()`` replaced, and stops patching modules imported later."""
    global _finder, _settings_error
    with _lock:
        if _finder is not None:
            try:
                sys.meta_path.remove(_finder)
            except ValueError:
                pass
            _finder = None
        _settings.clear()
        _settings_error = None
        if "casket.excamap" in sys.modules:
            sys.modules["casket.excamap"].restore()
        while _patched:
            name, attr, value = _patched.pop()
            module = sys.modules.get(name)
            if module is not None:
                setattr(module, attr, value)


def install_from_environment() -> None:
    """``install()`` when ``CASKET_EXCA`` is set to anything but ``""`` or ``"0"`` (run by ``casket_exca.pth``
    at interpreter start)."""
    import os

    if os.environ.get("CASKET_EXCA", "") in ("", "0"):
        return
    # An error raised here would only be printed, and the process would run on exca's format: the switch
    # is turned on, and the first store it would create raises the error instead.
    try:
        settings, error = environment_settings(), None
    except Exception as e:
        settings, error = {}, e
    _switch_on(settings, error)
