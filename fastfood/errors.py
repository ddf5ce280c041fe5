"""One exception type for every mistake a user can make, and one way to shorten others.

The CLI turns a FastfoodError into a one-line message and exit code 2 (no traceback), so
library code raises it with a message that names the file, line or flag at fault. A
decoder's exception, reported beside the file it failed on, goes through ``one_line``.
"""

import re


class FastfoodError(Exception):
    """A problem with the user's input: bad path, bad flag, bad file. Exit code 2."""

    exit_code = 2


def first_line(err: BaseException) -> str:
    """The first non-empty line of ``err``'s message (TensorFlow's ``message`` when it has
    one), or its type name: the one line a user is shown of a longer exception text."""
    text = str(getattr(err, "message", None) or err)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)


def one_line(err: BaseException, prefix: str = "cannot decode") -> str:
    """``err`` as one short line, without TensorFlow's op context decorations, after
    ``prefix: `` (nothing when ``prefix`` is empty)."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", first_line(err))  # {{function_node __wrapped__...}}
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)
    text = (text or type(err).__name__)[:200]
    return f"{prefix}: {text}" if prefix else text
