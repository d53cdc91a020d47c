"""review15b: a process that is a SageMaker endpoint (SCARAB_ENDPOINT_NAME) never forwards,
whatever endpoint a model's host names: for its own name that was a call to itself."""

from __future__ import annotations

import pytest
from lens.predict import sagemaker
from lens.predict.registry import registry


def test_an_endpoint_never_forwards(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry().get("tabular")
    assert entry is not None
    monkeypatch.delenv(sagemaker.ENDPOINT_MODELS_ENV, raising=False)
    monkeypatch.delenv("SCARAB_MODEL_DIR", raising=False)
    monkeypatch.delenv(sagemaker.ENDPOINT_NAME_ENV, raising=False)
    own, other = (entry.model_copy(update={"host": f"sagemaker:{n}"}) for n in ("me", "other"))
    assert sagemaker.forwards(own) and sagemaker.forwards(other)
    monkeypatch.setenv(sagemaker.ENDPOINT_NAME_ENV, "me")
    assert not sagemaker.forwards(own) and not sagemaker.forwards(other)
    monkeypatch.setenv(sagemaker.ENDPOINT_NAME_ENV, " ")
    assert sagemaker.forwards(own)
