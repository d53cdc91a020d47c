"""The server image's ECR repository, which --target sagemaker and --target fargate share
(Names.server_repository): neither target's destroy --include-images may delete it while
the other still runs from it."""

from __future__ import annotations

from scarab.aws import Aws
from scarab.naming import Names


def still_used_by(aws: Aws, names: Names, destroying: str) -> str | None:
    """The other target that still runs the stage's server image, if any (read-only)."""
    if destroying == "sagemaker":
        from scarab.targets.fargate.reader import read_service

        return "fargate" if read_service(aws, names) is not None else None
    from scarab.targets.sagemaker.reader import describe_endpoint

    return "sagemaker" if describe_endpoint(aws, names.endpoint) is not None else None


def kept_note(names: Names, user: str) -> str:
    return (
        f"ecr.repository {names.server_repository} (--target {user} still runs its image;"
        f" 'scarab destroy --target {user} --include-images' deletes it last)"
    )
