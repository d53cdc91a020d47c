"""Units of scarab.serve.s3_proxy's CORS: which of a bucket's rules allows a request,
and what an allowed response carries (S3's matching: origins with one `*`, methods
exact, every requested header allowed)."""

from __future__ import annotations

from typing import Any

from scarab.serve.s3_proxy import bucket_and_key, cors_headers, cors_rule

RULES: list[dict[str, Any]] = [
    {
        "AllowedOrigins": ["https://app.example.com", "http://*.preview.example.com"],
        "AllowedMethods": ["POST"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    },
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


def test_origins_methods_and_headers() -> None:
    assert cors_rule(RULES, "https://app.example.com", "POST") is RULES[0]
    assert cors_rule(RULES, "http://pr-7.preview.example.com", "POST") is RULES[0]
    assert cors_rule(RULES, "https://evil.example.com", "POST") is None
    assert cors_rule(RULES, "https://app.example.com", "PUT") is None
    assert cors_rule(RULES, "https://app.example.com", "POST", ["Content-Type"]) is RULES[0]
    assert cors_rule(RULES, "https://app.example.com", "POST", ["x-amz-date"]) is RULES[0]
    assert cors_rule(RULES, "https://app.example.com", "POST", ["authorization"]) is None
    # GET from anywhere, but no request headers (the rule allows none).
    assert cors_rule(RULES, "https://evil.example.com", "GET") is RULES[1]
    assert cors_rule(RULES, "https://evil.example.com", "GET", ["x-custom"]) is None
    assert cors_rule([], "https://app.example.com", "POST") is None


def test_allowed_response_headers() -> None:
    headers = dict(cors_headers(RULES[0], "https://app.example.com"))
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Expose-Headers"] == "ETag"
    assert headers["Access-Control-Max-Age"] == "3600"
    assert "Origin" in headers["Vary"]
    assert dict(cors_headers(RULES[1], "https://x.example"))["Access-Control-Allow-Origin"] == "*"


def test_path_style_bucket_and_key() -> None:
    assert bucket_and_key("/b") == ("b", "")
    assert bucket_and_key("/b/") == ("b", "")
    assert bucket_and_key("/b/uploads/abc") == ("b", "uploads/abc")
    assert bucket_and_key("/") == ("", "")
