"""`fastfood serve`: a web page and an HTTP API over a trained run.

    settings.py  the server's knobs (one frozen dataclass), checked before TensorFlow loads
    uploads.py   bytes-level preflight of an upload: format, truncation, pixel cap
    model.py     the run's model behind two calls: decode bytes, classify a batch
    batcher.py   dynamic batching with a bounded queue (503 + Retry-After when full)
    tfserving.py TensorFlow Serving's REST request and response shapes
    app.py       the Starlette app: routes, error handling, the page
    page.html    the single self-contained page served at /

The pixels and the forward pass are predict's (`fastfood.loaders.preprocess.eval_image`,
`fastfood.inference.forward.Forward`), so a file gets the same answer from the server, from
`fastfood predict` and from the exported SavedModel.
"""
