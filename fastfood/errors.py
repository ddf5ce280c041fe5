"""One exception type for every mistake a user can make.

The CLI turns a FastfoodError into a one-line message and exit code 2 (no traceback), so
library code raises it with a message that names the file, line or flag at fault.
"""


class FastfoodError(Exception):
    """A problem with the user's input: bad path, bad flag, bad file. Exit code 2."""

    exit_code = 2
