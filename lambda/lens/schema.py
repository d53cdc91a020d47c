"""The API's data models: one pydantic source for Gemini's response_schema, for validating
what the model returns, and for the OpenAPI document.

Field descriptions on `Analysis` and `Character` are read by the model (they travel in
the response schema), so they are written as instructions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lens.secrets import FAILED_READ_MAX_AGE, KeyKind, KeyProblem
from lens.settings import DEFAULT_TIER, Tier

Speed = Tier
ImageType = Literal["tomb", "temple", "other", "unknown"]


class Character(BaseModel):
    """A figure (god, king, queen, official, animal) depicted in the image."""

    character_name: str = Field(
        description="Name of the god, pharaoh, queen or person depicted, e.g. 'Osiris'. "
        "Use 'Unidentified figure' when the identity cannot be determined."
    )
    reasoning: str = Field(
        description="The visual evidence for the identification: crowns, regalia, "
        "attributes, cartouches or labels, and how they point to this figure."
    )
    description: str = Field(
        description="What the figure looks like and what it is doing in the scene."
    )
    location: str = Field(
        description="Where the figure is in the image, e.g. 'left third, seated on a throne'."
    )


class Analysis(BaseModel):
    """A structured reading of a photo of ancient Egyptian art."""

    picture_location: str = Field(
        description="The most likely monument and site where the scene is, e.g. 'Tomb of "
        "Nefertari (QV66), Valley of the Queens, Luxor'. Say 'Unknown' when it cannot be told."
    )
    date: str = Field(
        description="Period, dynasty and reign with approximate years, e.g. 'New Kingdom, "
        "19th Dynasty, reign of Ramesses II (c. 1279-1213 BCE)'."
    )
    characters: list[Character] = Field(
        description="Every identifiable figure in the image, most prominent first; "
        "an empty list when there are none."
    )
    ancient_text_translation: str = Field(
        description="An English translation of legible hieroglyphic, hieratic, demotic or "
        "Greek text in the image; say 'No legible text' when there is none."
    )
    interesting_detail: str = Field(
        description="One striking detail a visitor would enjoy knowing about this scene."
    )


class AnalyzeRequest(BaseModel):
    """POST /analyze body (the fields the Egyptian AI Lens frontend sends)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    # repr=False: frameworks log route arguments; never put megabytes of base64 in a log line.
    image: str | None = Field(
        default=None,
        repr=False,
        description="The photo: base64 (standard or URL-safe) or a data: URL. "
        "JPEG, PNG, WebP or GIF, judged by content. Send this or `upload`, not both.",
    )
    upload: str | None = Field(
        default=None,
        description="The key of a photo uploaded with POST /uploads (uploads/<32 hex>), "
        "in place of `image`; the object is deleted after the answer.",
    )
    speed: Speed = Field(
        default=DEFAULT_TIER,
        description="regular: most capable model; fast: balanced; super-fast: cheapest.",
    )
    image_type: ImageType = Field(
        default="unknown",
        alias="imageType",
        description="Where the photo was taken, a hint for the model.",
    )


class Usage(BaseModel):
    input_tokens: int = Field(description="Prompt tokens, the image included.")
    output_tokens: int = Field(description="Tokens of the JSON answer.")
    thinking_tokens: int = Field(description="Tokens the model spent thinking.")
    total_tokens: int


class ImageInfo(BaseModel):
    width: int = Field(description="Width of the image sent to the model, in pixels.")
    height: int = Field(description="Height of the image sent to the model, in pixels.")
    bytes_in: int = Field(description="Size of the uploaded image.")
    bytes_sent: int = Field(description="Size of the image sent to the model.")


class Timings(BaseModel):
    prepare: float = Field(description="Decoding and preparing the image, ms.")
    model: float = Field(description="The model call, retries included, ms.")
    total: float = Field(description="The whole request inside the function, ms.")


class AnalyzeResponse(BaseModel):
    """POST /analyze 200 answer."""

    analysis: Analysis
    model: str = Field(description="The model id that produced the analysis.")
    usage: Usage
    image: ImageInfo
    timings_ms: Timings
    request_id: str


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable snake_case code, e.g. image_too_large.")
    message: str = Field(description="A sentence a person understands.")


class ErrorResponse(BaseModel):
    """Every error answer."""

    error: ErrorDetail
    request_id: str | None


class GeminiHealth(BaseModel):
    """Whether /analyze has a Gemini key to call with (never its name or value)."""

    configured: bool = Field(
        description="Whether the API key can be read now: set in the environment, or read "
        f"from its store (a failed read is retried after {FAILED_READ_MAX_AGE} seconds)."
    )
    key_source: KeyKind | None = Field(
        description="Where the key is read from; null when no source is set."
    )
    reason: KeyProblem | None = Field(
        default=None,
        description="Why the key cannot be used (null when configured): no source set, an "
        "unknown GOOGLE_API_KEY_BACKEND, the store could not be read, or it holds no key.",
    )


class HealthResponse(BaseModel):
    """GET /health answer (never contains secrets)."""

    status: Literal["ok"]
    version: str
    models: dict[str, str] = Field(description="Speed tier -> Gemini model id.")
    gemini: GeminiHealth
    offline_models: list[str] = Field(description="Offline models loaded in this container.")


class UploadGrantRequest(BaseModel):
    """POST /uploads body."""

    content_type: str = Field(description="image/jpeg, image/png, image/webp or image/gif.")
    bytes: int = Field(description="The size of the file to upload.")


class UploadGrant(BaseModel):
    url: str = Field(description="Where to POST the multipart form (the file field last).")
    fields: dict[str, str] = Field(description="Form fields to send before the file, as given.")
    key: str = Field(description="The object key to pass as `upload` to /analyze or /jobs.")
    expires_at: str = Field(description="When the grant expires (ISO-8601 UTC).")
    max_bytes: int = Field(description="The largest file the grant accepts.")


class UploadGrantResponse(BaseModel):
    """POST /uploads 201 answer: a presigned S3 POST."""

    upload: UploadGrant


class JobAccepted(BaseModel):
    """POST /jobs 202 answer."""

    job_id: str
    status_url: str


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobTimings(BaseModel):
    queued: float | None = Field(default=None, description="Created to running, ms.")
    run: float | None = Field(default=None, description="Running to done, ms.")
    total: float | None = Field(default=None, description="Created to done, ms.")


class JobResponse(BaseModel):
    """GET /jobs/{id} answer."""

    status: JobStatus
    result: AnalyzeResponse | None = Field(default=None, description="The /analyze answer.")
    error: ErrorDetail | None = None
    timings_ms: JobTimings
    created_at: str
    updated_at: str
