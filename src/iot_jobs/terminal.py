"""The terminal between prompts: no echo, no line discipline, signals still on.

While a command runs, prompt_toolkit has handed the terminal back in cooked mode: keys typed ahead
would be echoed into the command's output, and a Ctrl-D on an empty line is the line discipline's
EOF (it reaches the next prompt as a NUL, so the user's Ctrl-D is lost). With ECHO and ICANON off
and ISIG on, typed-ahead keys wait unechoed, byte for byte, for the next prompt, and Ctrl-C still
raises KeyboardInterrupt in the command (which the loop turns into "cancel this command").
prompt_toolkit saves and restores whatever mode it finds, so this mode holds between prompts.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def between_prompts() -> Iterator[None]:
    try:
        import termios

        fd = sys.stdin.fileno()
        before = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError):  # not a terminal (or not POSIX): nothing to do
        yield
        return
    quiet = termios.tcgetattr(fd)
    quiet[3] = (quiet[3] & ~(termios.ECHO | termios.ICANON)) | termios.ISIG
    quiet[6][termios.VMIN] = 1
    quiet[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, quiet)  # TCSANOW: keep what was typed ahead
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            termios.tcsetattr(fd, termios.TCSANOW, before)
