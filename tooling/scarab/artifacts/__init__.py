"""Build the function's deployable artifact: a reproducible zip or a container image."""

from scarab.artifacts.image import ImageBuild, build_image, image_tag
from scarab.artifacts.zip import (
    LAMBDA_ZIP_LIMIT,
    ZipBuild,
    build_function_zips,
    build_zip,
    zip_path,
)

__all__ = [
    "LAMBDA_ZIP_LIMIT",
    "ImageBuild",
    "ZipBuild",
    "build_function_zips",
    "build_image",
    "build_zip",
    "image_tag",
    "zip_path",
]
