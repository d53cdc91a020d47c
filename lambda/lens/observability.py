"""Powertools Logger and Metrics shared by every route (one instance per process)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "scarab"
NAMESPACE = "Scarab"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
