"""Casket: content-addressed, deduplicating blob store (Python client, format version 1).

See docs/FORMAT.md in the Casket repository for the on-disk contract.
"""

from .cachedict import CacheDict
from .claims import ClaimBoard, ClaimRecord, ClaimSurvey, ClaimTimeout, HeldClaim
from .index import Entry, IndexDebrisWarning, IndexReader, IndexWriter, MalformedLineWarning
from .store import (
    EMPTY_HASH,
    FORMAT_VERSION,
    BlobCorruptError,
    BlobError,
    BlobMissingError,
    CasketError,
    Store,
    StoreError,
    check_hash,
    hash_bytes,
    init_store,
    open_or_init_store,
    is_well_formed_hash,
)
from .values import MissingDependencyError, UnknownTypeError, ValueFormatError, decode, encode
from . import packs as _packs  # noqa: F401  (with the rest: a store's first write session does not import it)

__version__ = "0.1.0"

__all__ = [
    "CacheDict",
    "ClaimBoard",
    "ClaimRecord",
    "ClaimSurvey",
    "ClaimTimeout",
    "HeldClaim",
    "Store",
    "init_store",
    "open_or_init_store",
    "IndexReader",
    "IndexWriter",
    "Entry",
    "MalformedLineWarning",
    "IndexDebrisWarning",
    "hash_bytes",
    "is_well_formed_hash",
    "check_hash",
    "EMPTY_HASH",
    "FORMAT_VERSION",
    "CasketError",
    "StoreError",
    "BlobError",
    "BlobMissingError",
    "BlobCorruptError",
    "ValueFormatError",
    "UnknownTypeError",
    "MissingDependencyError",
    "encode",
    "decode",
]
