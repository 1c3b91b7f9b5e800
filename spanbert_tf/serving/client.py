"""TF Serving's REST `:predict` protocol, applied to a SavedModel signature in-process.

The model server cannot be installed everywhere, so this module does what its
REST front end does with a request body: parse the JSON, map it onto the
signature's named inputs with the signature's dtypes (row format
`{"instances": [...]}` or columnar `{"inputs": {...}}`), run the signature and
format `{"predictions": ...}` / `{"outputs": ...}` — or `{"error": "..."}` for a
bad request, as the server answers with HTTP 400 instead of crashing.

It imports only TensorFlow and the standard library (no keras, keras_hub or
spanbert_tf), so clients and the export tests' fresh processes can load it by
file path.

Example:
```python
loaded = tf.saved_model.load("export/encoder/1")
body = '{"instances": [{"input_word_ids": [101, 102], "input_mask": [1, 1], "input_type_ids": [0, 0]}]}'
response = predict_rest(loaded, body)        # {"predictions": [{"pooled_output": [...], ...}]}
```
"""

import base64
import json

import numpy as np
import tensorflow as tf


class RestRequestError(ValueError):
    """A request TF Serving would answer with HTTP 400 (message = its "error").

    A ValueError, not an `InputError`: this module imports nothing of spanbert_tf (it is loaded
    by file path in processes without the package), and `predict_rest` answers it as
    `{"error": ...}` rather than raising it to a program."""


def signature_inputs(signature):
    """{input name: tf.TensorSpec} of a loaded signature (concrete function)."""
    _, kwargs = signature.structured_input_signature
    return dict(kwargs)


def _convert(name, value, spec):
    """One JSON value → np.ndarray of `spec.dtype`; RestRequestError when it does not fit."""
    dtype = spec.dtype
    if dtype == tf.string:

        def to_bytes(v):
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            if isinstance(v, str):
                return v.encode("utf-8")
            if isinstance(v, list):
                return [to_bytes(x) for x in v]
            raise RestRequestError(f"input '{name}': JSON value {v!r} is not a string")

        array = np.array(to_bytes(value), dtype=object)
    else:
        def check(v):
            if isinstance(v, list):
                for x in v:
                    check(x)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RestRequestError(f"input '{name}': JSON value {v!r} is not a {dtype.name}")
            elif dtype.is_integer and not isinstance(v, int):
                raise RestRequestError(f"input '{name}': JSON value {v!r} is not a {dtype.name}")

        check(value)
        try:
            array = np.array(value, dtype=dtype.as_numpy_dtype)
        except (ValueError, OverflowError) as e:
            raise RestRequestError(f"input '{name}': {e} (ragged or out of range?)") from None
        if array.dtype == object:
            raise RestRequestError(f"input '{name}': ragged list, every row must have the same length")
    if not spec.shape.is_compatible_with(array.shape):
        raise RestRequestError(
            f"input '{name}': shape {list(array.shape)} does not match the signature's "
            f"{spec.shape.as_list()} (rank {spec.shape.rank} expected, got {array.ndim})"
        )
    return array


def rest_request_to_tensors(body, signature):
    """Maps a `:predict` body (str, bytes or dict) onto the signature's inputs.

    Returns (dict of tf.Tensor by input name, "row" | "columnar"). Raises
    `RestRequestError` for malformed JSON, missing/unknown inputs, wrong JSON
    types, ragged rows or shapes the signature does not accept.
    """
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as e:
            raise RestRequestError(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict) or len({"instances", "inputs"} & set(body)) != 1:
        raise RestRequestError("request must be a JSON object with exactly one of 'instances' or 'inputs'")
    specs = signature_inputs(signature)
    if "instances" in body:
        form, instances = "row", body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RestRequestError("'instances' must be a non-empty list")
        if all(isinstance(x, dict) and not set(x) == {"b64"} for x in instances):
            names = set(instances[0])
            for x in instances:
                if set(x) != names:
                    raise RestRequestError("every instance must name the same inputs")
            columns = {n: [x[n] for x in instances] for n in names}
        elif len(specs) == 1:
            columns = {next(iter(specs)): instances}
        else:
            raise RestRequestError(
                f"instances must be objects naming the inputs {sorted(specs)}"
            )
    else:
        form, inputs = "columnar", body["inputs"]
        if isinstance(inputs, dict) and not set(inputs) == {"b64"}:
            columns = dict(inputs)
        elif len(specs) == 1:
            columns = {next(iter(specs)): inputs}
        else:
            raise RestRequestError(f"'inputs' must be an object naming the inputs {sorted(specs)}")
    unknown = sorted(set(columns) - set(specs))
    missing = sorted(set(specs) - set(columns))
    if unknown or missing:
        raise RestRequestError(
            f"inputs do not match the signature: unknown {unknown}, missing {missing}; "
            f"expected {sorted(specs)}"
        )
    tensors = {
        n: tf.constant(_convert(n, v, specs[n]), dtype=specs[n].dtype) for n, v in columns.items()
    }
    return tensors, form


def _jsonable(array):
    array = np.asarray(array)
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def rest_response(outputs, form):
    """Formats signature outputs the way TF Serving does for `form` ("row" | "columnar")."""
    outputs = {k: np.asarray(v) for k, v in outputs.items()}
    if form == "columnar":
        if len(outputs) == 1:
            return {"outputs": _jsonable(next(iter(outputs.values())))}
        return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}
    batch = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(batch) != 1 or None in batch:
        raise RestRequestError("outputs do not share a batch dimension; use the columnar 'inputs' form")
    n = batch.pop()
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    return {
        "predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(n)]
    }


def predict_rest(loaded, body, signature_name=None):
    """Runs one REST `:predict` body through a loaded SavedModel's signature.

    The signature is `signature_name`, else the body's "signature_name" (as TF
    Serving reads it), else "serving_default". Returns the response dict; a bad
    request gives `{"error": message}` (what the server returns with HTTP 400),
    never an exception.
    """
    try:
        if isinstance(body, (str, bytes)):
            try:
                body = json.loads(body)
            except json.JSONDecodeError as e:
                raise RestRequestError(f"request body is not valid JSON: {e}") from None
        if signature_name is None and isinstance(body, dict):
            signature_name = body.get("signature_name")
        signature_name = signature_name or "serving_default"
        if signature_name not in loaded.signatures:
            raise RestRequestError(
                f"signature '{signature_name}' not found; have {sorted(loaded.signatures)}")
        signature = loaded.signatures[signature_name]
        tensors, form = rest_request_to_tensors(body, signature)
        outputs = signature(**tensors)
        return rest_response(outputs, form)
    except (RestRequestError, tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        return {"error": error_message(e)}


def error_message(error):
    """The informative line of an exception (a graph assertion's message, not its stack)."""
    text = (getattr(error, "message", None) or str(error)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("assertion failed:"):
            return line
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line for line in lines if not line.startswith(noise)]
    return lines[0] if lines else type(error).__name__
