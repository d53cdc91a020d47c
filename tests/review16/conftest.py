"""The jobs' fixtures (a stage in the moto server, the self-invoke peer)."""

from tests.jobs.conftest import invoke, lens_env, peer, stage

__all__ = ["invoke", "lens_env", "peer", "stage"]
