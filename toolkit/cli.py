"""How every command-line entry point ends: the result, or one line saying what went wrong.

``run_cli(main)`` runs a recipe's or CLI's ``main``; an error prints ``error: <message>`` on stderr and exits 2
(a usage or input error) or 1 (anything else), without a traceback unless ``--debug`` is on the command line or
``TOOLKIT_DEBUG=1`` is set. When ``TOOLKIT_ERROR_FILE`` names a file, the same line is written there, so a launcher
script (train.sh, test.sh) can repeat it as its own last line, below accelerate's report of the failed child.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

# Errors of the user's making: a bad flag, config value, file or input. Everything else is a bug or the system's.
USAGE_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                 PermissionError, KeyError)


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` on the command line (removed from ``argv``) or ``TOOLKIT_DEBUG=1``."""
    flag = "--debug" in argv
    while "--debug" in argv:
        argv.remove("--debug")
    return flag or os.environ.get("TOOLKIT_DEBUG", "").lower() in ("1", "true", "yes")


def one_line(error: BaseException) -> str:
    """The error's message on one line; its type is named when it is not one of the usage errors."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, KeyError) and message.startswith("'"):
        message = message.strip("'")
    return message if isinstance(error, usage_error_types()) else f"{type(error).__name__}: {message}"


def usage_error_types() -> tuple[type[BaseException], ...]:
    """The usage errors, with the toolkit's own input errors where their modules are already imported."""
    extra = []
    for module, name in (("toolkit.data.readers", "DataError"), ("toolkit.evaluation.inputs", "InputError"),
                         ("toolkit.hub", "ModelNotAvailableError")):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None:
            extra.append(cls)
    return USAGE_ERRORS + tuple(extra)


def report(message: str, prog: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    path = os.environ.get("TOOLKIT_ERROR_FILE")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{prog}: error: {message}\n")
        except OSError:
            pass


def run_cli(main: Callable[[list[str]], Any], argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run ``main(argv)`` and exit: 0 on success (or main's int), 2 on a usage error, 1 on any other error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0]) or "toolkit"
    debug = debug_requested(argv)
    try:
        result = main(argv)
    except KeyboardInterrupt:
        report("interrupted", prog)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - every error ends as one line unless a traceback is asked for
        if debug:
            raise
        usage = isinstance(error, usage_error_types())
        hint = "" if usage else " (run with --debug or TOOLKIT_DEBUG=1 for the traceback)"
        report(one_line(error) + hint, prog)
        sys.exit(2 if usage else 1)
    sys.exit(result if isinstance(result, int) else 0)
