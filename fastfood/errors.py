"""One exception type for every mistake a user can make, and one way to shorten others.

The CLI turns a FastfoodError into a one-line message and exit code 2 (no traceback), so
library code raises it with a message that names the file, line or flag at fault. A
decoder's exception, reported beside the file it failed on, goes through ``one_line``.
"""

import re


class FastfoodError(Exception):
    """A problem with the user's input: bad path, bad flag, bad file. Exit code 2."""

    exit_code = 2


def one_line(err: BaseException, prefix: str = "cannot decode") -> str:
    """``err`` as one short line, without TensorFlow's op context decorations, after
    ``prefix: `` (nothing when ``prefix`` is empty)."""
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)  # {{function_node __wrapped__DecodeJpeg...}}
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.strip().splitlines()[0] if text.strip() else "")
    text = (text or type(err).__name__)[:200]
    return f"{prefix}: {text}" if prefix else text
