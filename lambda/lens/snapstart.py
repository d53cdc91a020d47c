"""SnapStart: the expensive work done once in init, and what each restored copy renews.

With SnapStart, Lambda initializes a published version once, snapshots the memory and
restores that snapshot for each new execution environment, so whatever init built
exists in every copy at once. When SnapStart is on (scarab sets SCARAB_SNAPSTART=1 on
such a function; Lambda sets AWS_LAMBDA_INITIALIZATION_TYPE=snap-start while it
initializes for a snapshot), importing an entry point primes it: the imports of the
first request, the Gemini client (when the key can be read), the ONNX sessions of the
packaged models. Then it registers hooks with the runtime's `snapshot_restore_py` (or
lens.snapshot_hooks, the same API, where the runtime's module is absent):

- before the snapshot: drop the boto3 clients and database pools (the same as below),
  so none is in the snapshot;
- after each restore: reseed the random generators (`random`, the registry's traffic
  split, numpy's global one; fresh entropy into OpenSSL's), drop the connection pools
  and the clients that hold them (the response cache's and the registry's DynamoDB
  clients, the key store's clients with the key they cached, boto3's default session,
  the prediction log's database pools), and rebuild the Gemini client's transport (a
  new Client on the process's TLS context: about a millisecond).

Request ids need nothing: each is the invocation's own, or a uuid4 (os.urandom, never
cached). This module imports nothing heavy, and the hooks import nothing: they renew
what is loaded.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
from collections.abc import Collection, Mapping
from types import ModuleType
from typing import Any

from lens.observability import logger

SNAPSTART_ENV = "SCARAB_SNAPSTART"  # contract with scarab.deploy.models.SNAPSTART_ENV
INIT_TYPE_ENV = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"
RUNTIME_HOOKS = "snapshot_restore_py"

_registered = False


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process initializes for a snapshot."""
    env = os.environ if env is None else env
    return env.get(SNAPSTART_ENV, "").strip() == "1" or env.get(INIT_TYPE_ENV) == SNAP_START


def hooks_module() -> ModuleType:
    """The runtime's snapshot_restore_py, or lens.snapshot_hooks where it is absent."""
    try:
        return importlib.import_module(RUNTIME_HOOKS)
    except ImportError:
        return importlib.import_module("lens.snapshot_hooks")


# The hooks ---------------------------------------------------------------------------


def reseed_random() -> None:
    """Every restored copy starts with the snapshot's generator states: draw new seeds
    from the OS (CPython reseeds `random` after a fork, never after a restore)."""
    random.seed()
    sources = sys.modules.get("lens.predict.sources")
    if sources is not None:
        sources.rng().seed()
    numpy_random = sys.modules.get("numpy.random")  # numpy imports it on first use only
    if numpy_random is not None:
        numpy_random.seed()
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        # OpenSSL reseeds its generator when it sees a new pid; a restore keeps the pid.
        ssl.RAND_add(os.urandom(32), 32.0)


def drop_connections() -> None:
    """Forget every pooled connection and the clients that hold them (their sockets
    belong to the snapshot); each is made again on first use."""
    cache = sys.modules.get("lens.cache")
    if cache is not None:
        cache.drop_clients()
    sources = sys.modules.get("lens.predict.sources")
    if sources is not None:
        sources.drop_clients()
    secrets = sys.modules.get("lens.secrets")
    if secrets is not None:
        secrets.reset_key_cache()  # the key stores' clients, with the key they cached
    writer = sys.modules.get("lens.log.writer")
    if writer is not None:
        writer.drop_pools()
    clients = sys.modules.get("lens.clients")
    if clients is not None:
        clients.reset_clients()  # the uploads bucket's, jobs table's and self-invoke's
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None  # its credentials were resolved before the snapshot


def renew_gemini_client() -> None:
    """A new Gemini client transport: its pool's connections belong to the snapshot."""
    gemini = sys.modules.get("lens.gemini")
    if gemini is not None:
        gemini.renew_client()


BEFORE_SNAPSHOT = (drop_connections,)
AFTER_RESTORE = (reseed_random, drop_connections, renew_gemini_client)


def run_before_snapshot(*, without: Collection[str] = ()) -> None:
    """Run the registered before-snapshot hooks as the runtime does (last first), but
    those named in `without`."""
    for func, args, kwargs in reversed(list(hooks_module().get_before_snapshot())):
        if getattr(func, "__name__", "") not in without:
            func(*args, **kwargs)


def run_after_restore(*, without: Collection[str] = ()) -> None:
    """Run the registered after-restore hooks as the runtime does (in order). `without`:
    names of hooks to leave out (tests show each one matters)."""
    for func, args, kwargs in list(hooks_module().get_after_restore()):
        if getattr(func, "__name__", "") not in without:
            func(*args, **kwargs)


# Init --------------------------------------------------------------------------------


def _prime_gemini() -> None:
    from lens import gemini
    from lens.secrets import get_api_key

    # What the first /analyze imports: the SDK, its types and errors, its HTTP stack.
    importlib.import_module("google.genai.errors")
    importlib.import_module("google.genai.types")
    gemini._transport_errors()
    try:
        key = get_api_key()
    except Exception as exc:  # no key yet: /analyze answers 503 as without SnapStart
        logger.info("snapstart: no Gemini client in init", extra={"why": type(exc).__name__})
        return
    gemini.get_client(key)


def _prime_models() -> None:
    from lens.predict.loader import ModelLoadError, store
    from lens.predict.registry import registry

    importlib.import_module("numpy")
    models = store()
    for entry in registry().models:
        try:
            if models.location(entry).startswith("s3://"):
                continue  # downloads wait for a request: init stays offline
            models.get(entry)
        except ModelLoadError as exc:  # the request that needs it answers the error
            logger.warning("snapstart: model not loaded in init", extra={"model": exc.model})


def prime(*, gemini: bool = False, models: bool = False) -> bool:
    """When SnapStart is on: do the first request's expensive work now (`gemini`: the
    client; `models`: the packaged models' sessions) and register the hooks (once per
    process). Returns whether SnapStart is on."""
    global _registered
    if not enabled():
        return False
    if gemini:
        _prime_gemini()
    if models:
        _prime_models()
    if not _registered:
        hooks = hooks_module()
        for func in BEFORE_SNAPSHOT:
            hooks.register_before_snapshot(func)
        for func in AFTER_RESTORE:
            hooks.register_after_restore(func)
        _registered = True
    return True
