"""Review 5 (adversarial): the plan display told refs and literal text apart by nothing.

A value "${rest_api_id}" (an environment variable, say) showed exactly as the ref to the
REST API's id, and a Sub's text as a bare string. Now a literal "${" shows as "${!" (as in
CloudFormation's Fn::Sub) and a ref as "${name}", closed by the brace that balances it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from scarab.deploy.display import plan_document, show
from scarab.deploy.executor import resolve
from scarab.deploy.instructions import ApiCall, Ref, Step, Sub

VALUES = {
    "rest_api_id": "abc123",
    "resource:/predict/{model_id}": "res9",
    "x": "X-VALUE",
}


def read_shown(text: str, values: dict[str, str]) -> str:
    """A shown string evaluated by the display's documented grammar: "${!" is the text
    "${", any other "${" opens a ref that the brace balancing it closes."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("${!", i):
            out.append("${")
            i += 3
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(values[text[i + 2 : j - 1]])
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


CASES: list[tuple[Any, str]] = [
    (Ref("rest_api_id"), "${rest_api_id}"),
    ("${rest_api_id}", "${!rest_api_id}"),
    (Ref("resource:/predict/{model_id}"), "${resource:/predict/{model_id}}"),
    ("${resource:/predict/{model_id}}", "${!resource:/predict/{model_id}}"),
    (
        Sub("arn:aws:execute-api:r:1:${rest_api_id}/dev/*/*"),
        "arn:aws:execute-api:r:1:${rest_api_id}/dev/*/*",
    ),
    # Literal braces around a ref, and a "${" the executor leaves alone (no closing brace).
    (Sub("{${rest_api_id}}:${x"), "{${rest_api_id}}:${!x"),
    (Sub("${x}}"), "${x}}"),
    ("{x}", "{x}"),
    ("${!x}", "${!!x}"),
    ("${AWS::Region}", "${!AWS::Region}"),
]


@pytest.mark.parametrize(("value", "shown"), CASES)
def test_a_value_shows_as_what_the_executor_sends(value: Any, shown: str) -> None:
    assert show(value) == shown
    assert read_shown(shown, VALUES) == resolve(value, VALUES)


def test_no_two_values_show_alike() -> None:
    shown = [show(value) for value, _ in CASES]
    assert len(set(shown)) == len(shown), shown


def test_the_plan_json_escapes_a_literal_in_the_environment() -> None:
    variables = {"REGION_TEXT": "${AWS::Region}", "API": "${rest_api_id}"}
    step = Step(
        "lambda.function scarab-dev configuration",
        "update",
        "Environment changed",
        (
            ApiCall(
                "lambda",
                "UpdateFunctionConfiguration",
                {"FunctionName": Ref("x"), "Environment": {"Variables": variables}},
            ),
        ),
    )
    doc = json.loads(json.dumps(plan_document("dev", "eu-west-1", [step])))
    [call] = doc["steps"][0]["calls"]
    assert call["params"] == {
        "FunctionName": "${x}",
        "Environment": {"Variables": {"REGION_TEXT": "${!AWS::Region}", "API": "${!rest_api_id}"}},
    }
