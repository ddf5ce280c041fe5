"""TensorFlow Serving's REST predict API for the exported signature, in and out.

The exported SavedModel's `serving_default` takes one input, `images` (string [None]: encoded
JPEG/PNG), and returns `classes` (int32 [n, k]), `names` (string [n, k]) and `probs`
(float32 [n, k]). TF Serving's JSON for that signature, which this module reads and writes:

    request  {"instances": [{"b64": "..."}, ...]}            row format, bare input value
             {"instances": [{"images": {"b64": "..."}}, ...]} row format, named input
             {"inputs": [{"b64": ...}, ...]} or {"inputs": {"images": [...]}}  columnar
             "signature_name", if given, must be "serving_default"
    response {"predictions": [{"classes": [...], "names": [...], "probs": [...]}, ...]}
             {"outputs": {"classes": [[...]], "names": [[...]], "probs": [[...]]}} (columnar)
    error    {"error": "..."} with a 4xx status: one bad instance fails the request, as in
             TF Serving, and the message says which.

So a client written for this server works unchanged against TF Serving with the export.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

INPUT = "images"
SIGNATURE = "serving_default"
OUTPUTS = ("classes", "names", "probs")


class RequestError(ValueError):
    """A request body TF Serving would refuse, with its reason."""


@dataclass(frozen=True)
class ServingRequest:
    """The decoded image bytes of a predict request, and which response shape it wants."""

    images: list[bytes]
    columnar: bool


def parse(body: bytes) -> ServingRequest:
    """Read a TF Serving predict body; RequestError names the first thing that is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(f"malformed JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object with \"instances\" or \"inputs\"")
    signature = data.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise RequestError(f"unknown signature_name {signature!r} (this model has only "
                           f"{SIGNATURE!r})")
    if ("instances" in data) == ("inputs" in data):
        raise RequestError("give exactly one of \"instances\" (row format) or \"inputs\" "
                           "(columnar format)")
    if "instances" in data:
        values, columnar, where = data["instances"], False, "instances"
    else:
        values, columnar, where = data["inputs"], True, "inputs"
        if isinstance(values, dict):
            if set(values) != {INPUT}:
                raise RequestError(f"inputs: the only input is {INPUT!r}, got {sorted(values)}")
            values, where = values[INPUT], f"inputs.{INPUT}"
    if not isinstance(values, list):
        raise RequestError(f"{where} must be a list")
    return ServingRequest([_instance(v, f"{where}[{i}]") for i, v in enumerate(values)],
                          columnar)


def _instance(value: Any, where: str) -> bytes:
    """The bytes of one instance: {"b64": ...} or {"images": {"b64": ...}}."""
    if isinstance(value, dict) and set(value) == {INPUT}:
        value, where = value[INPUT], f"{where}.{INPUT}"
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(f"{where}: expected {{\"b64\": \"<base64 of JPEG/PNG bytes>\"}}")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(f"{where}: invalid base64 ({err})") from None


def response(rows: list[dict[str, list[Any]]], columnar: bool) -> dict[str, Any]:
    """Per-image outputs (classes, names, probs) in the shape TF Serving answers with."""
    if columnar:
        return {"outputs": {name: [row[name] for row in rows] for name in OUTPUTS}}
    return {"predictions": rows}
