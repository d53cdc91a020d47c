"""A SnapStart init and restores, simulated in a fresh interpreter (run by the tests).

    python -m tests.function.snapstart_probe OUT.json '{"copies": 2, "without": []}'

With SCARAB_SNAPSTART=1 in the environment it imports lens.handler (init primes it and
registers the hooks), answers one /analyze (a priming request: it leaves a pooled
connection to the Gemini server and a DynamoDB client in the response cache), runs the
before-snapshot hooks and takes the "snapshot": the state of `random` at that moment.
Then, one after the other, `copies` children are forked; each is a restored copy: it puts
`random` back to the snapshot's state (CPython reseeds it after a fork, a restore does
not; the other generators are as the snapshot left them anyway), runs the after-restore
hooks (but those named in `without`), draws from each generator, and answers /analyze
and /predict/tabular. The parent draws from the same generators too: the snapshot's own
continuation. Everything goes to OUT.json; the tests compare.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from tests.function.events import FakeContext, b64, jpeg, response_json, rest_event


def _draws() -> dict[str, list[float]]:
    import numpy as np
    from lens.predict import sources

    return {
        "random": [random.random() for _ in range(3)],
        "registry_split": [sources.rng().random() for _ in range(3)],
        "numpy": [float(x) for x in np.random.random(3)],
    }


def _analyze(handler: Any, color: tuple[int, int, int]) -> dict[str, Any]:
    # A different image each time: the in-memory answers the snapshot holds stay valid
    # in every copy, but each request here must reach Gemini.
    event = rest_event(body={"image": b64(jpeg(color=color)), "speed": "fast"})
    answer = handler(event, FakeContext())
    return {"status": answer["statusCode"], "body": response_json(answer)}


def _predict(handler: Any) -> dict[str, Any]:
    from lens.predict.registry import registry

    tabular = registry().get("tabular")
    assert tabular is not None
    event = rest_event(
        path="/predict/tabular", body={"features": {n: 1.0 for n in tabular.features}}
    )
    answer = handler(event, FakeContext())
    return {"status": answer["statusCode"], "body": response_json(answer)}


def _shared_client() -> Any:
    from lens import cache

    built = cache.get_cache()
    assert built is not None and built.shared is not None, "the probe needs the shared cache"
    return built.shared.client()


def _restored_copy(
    handler: Any, snapshot: Any, inherited: dict[str, Any], without: list[str], n: int
) -> dict[str, Any]:
    from lens import gemini, snapstart
    from lens.predict import loader

    random.setstate(snapshot)  # as the snapshot had it: a restore does not reseed
    snapstart.run_after_restore(without=without)
    out: dict[str, Any] = {"pid": os.getpid(), "draws": _draws()}
    out["analyze"] = _analyze(handler, (10 * n, 200, 40))
    out["predict"] = _predict(handler)
    out["gemini_client_renewed"] = gemini.current_client() is not inherited["gemini"]
    out["cache_client_renewed"] = _shared_client() is not inherited["cache"]
    out["models_kept"] = loader.store().loaded_names() == inherited["models"]
    return out


def main(out_path: str, spec: dict[str, Any]) -> None:
    from lens import gemini, snapstart
    from lens.handler import lambda_handler as handler
    from lens.predict import loader

    result: dict[str, Any] = {
        "enabled": snapstart.enabled(),
        "primed": {
            "gemini_client": gemini.current_client() is not None,
            "models": loader.store().loaded_names(),
            "hooks": [f.__name__ for f, _a, _k in snapstart.hooks_module().get_after_restore()],
            "hooks_module": snapstart.hooks_module().__name__,
        },
    }
    result["priming"] = _analyze(handler, (1, 2, 3))
    import numpy.random  # numpy's global generator in the snapshot too (lens uses none)

    numpy.random.random()
    without = list(spec.get("without", []))
    snapstart.run_before_snapshot(without=without)
    inherited = {
        "gemini": gemini.current_client(),
        "cache": _shared_client(),  # made now if the hooks dropped it: the snapshot's
        "models": loader.store().loaded_names(),
    }
    snapshot = random.getstate()
    copies = []
    for n in range(int(spec.get("copies", 2))):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the restored copy
            os.close(read)
            code = 0
            try:
                data = json.dumps(_restored_copy(handler, snapshot, inherited, without, n))
            except BaseException as exc:  # reported, then the child ends either way
                data, code = json.dumps({"error": repr(exc)}), 1
            with os.fdopen(write, "w") as pipe:
                pipe.write(data)
            os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            copies.append(json.loads(pipe.read()))
        os.waitpid(pid, 0)
    result["copies"] = copies
    random.setstate(snapshot)
    result["snapshot_draws"] = _draws()
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
