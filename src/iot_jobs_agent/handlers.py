"""From a document's action to an argv and an environment, refusing anything unsafe.

A handler is a file in the handler directory. It, and the directory, must be owned by the agent's
user and writable by nobody else; a name is a bare file name, and a symlink must stay inside the
directory. Arguments are an argv (no shell ever). ``runCommand`` needs ``--allow-run-command``.
``runAsUser`` switches user only through ``sudo -n -u USER`` and only for users the configuration
allows; otherwise the step fails (it never runs as the agent's own user instead).

A handler may declare itself safe to run again after the agent restarted under it (the restart
policy, docs/agent.md) with the line ``# iot-jobs-agent: safe-to-repeat`` near its top: the shipped
two-phase ``reboot.sh`` does, since AWS-Reboot's document cannot carry ``safeToRepeat``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .documents import RUN_COMMAND, Action, DocumentError, check_handler_name

#: The line by which a handler declares itself safe to repeat, looked for in its first ``MARK_BYTES``.
SAFE_TO_REPEAT_MARK = "# iot-jobs-agent: safe-to-repeat"
MARK_BYTES = 1024

#: The only PATH handlers see (a root-like default so that apt-get, systemctl... are found).
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Refused(Exception):
    """This action may not run; ``str(exc)`` says why."""


@dataclass(frozen=True)
class Policy:
    handler_dir: Path
    allow_run_command: bool = False
    #: Users that runAsUser may name (switched to with ``sudo -n -u``).
    run_as_users: frozenset[str] = frozenset()
    dry_run: bool = False
    #: Where the shipped download-file.sh may write (``--download-dir``); None: downloads refused.
    download_dir: Path | None = None


@dataclass(frozen=True)
class Prepared:
    argv: tuple[str, ...]
    #: Why the step must fail without running (a user that cannot be switched to), else None.
    failure: str | None = None
    #: The handler declares itself safe to run again after an agent restart (``SAFE_TO_REPEAT_MARK``).
    safe_to_repeat: bool = False


def _check_owner_and_mode(path: Path, what: str) -> os.stat_result:
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise Refused(f"{what} {path} is owned by uid {info.st_uid}, not by the agent's user ({os.geteuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Refused(f"{what} {path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})")
    return info


def check_directory(directory: Path) -> Path:
    """The handler directory, resolved, after its ownership and mode checks."""
    try:
        resolved = directory.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise Refused(f"handler directory {directory} does not exist") from exc
    if not resolved.is_dir():
        raise Refused(f"handler directory {directory} is not a directory")
    _check_owner_and_mode(resolved, "handler directory")
    return resolved


def find_handler(policy: Policy, name: str, path: str) -> Path:
    """The handler's file after every check, or ``Refused``."""
    try:
        check_handler_name(name)
    except DocumentError as exc:
        raise Refused(str(exc)) from None
    directory = check_directory(policy.handler_dir)
    if path not in ("", "default"):
        try:
            given = Path(path).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            given = None
        if given != directory:
            raise Refused(f"path {path!r} is not the handler directory {policy.handler_dir}")
    candidate = directory / name
    if not os.path.lexists(candidate):
        raise Refused(f"handler {name!r} not found in {directory}")
    target = candidate.resolve()
    if target.parent != directory:
        raise Refused(f"handler {name!r} is a symlink out of the handler directory (to {target})")
    if not target.is_file():
        raise Refused(f"handler {name!r} is not a regular file")
    info = _check_owner_and_mode(target, "handler")
    if not info.st_mode & stat.S_IXUSR:
        raise Refused(f"handler {target} is not executable")
    return target


def prepare(policy: Policy, action: Action) -> Prepared:
    """The argv of ``action`` (``[handler, runAsUser, *args]`` as the Device Client passes it), or ``Refused``."""
    repeat = False
    if action.type == RUN_COMMAND:
        if not policy.allow_run_command:
            raise Refused("runCommand is not allowed on this device (start the agent with --allow-run-command)")
        program = shutil.which(action.command[0], path=SAFE_PATH) if "/" not in action.command[0] else None
        argv: tuple[str, ...] = (program or action.command[0], *action.command[1:])
    else:
        assert action.handler is not None
        handler = find_handler(policy, action.handler, action.path)
        argv = (str(handler), action.run_as_user, *action.args)
        repeat = declares_safe_to_repeat(handler)
    user = action.run_as_user
    if not user or user == _me():
        return Prepared(argv, safe_to_repeat=repeat)
    if user not in policy.run_as_users:
        return Prepared(argv, f"runAsUser {user!r} is not allowed on this device (--run-as-user)")
    sudo = shutil.which("sudo", path=SAFE_PATH)
    if sudo is None:
        return Prepared(argv, f"runAsUser {user!r} needs sudo, which is not installed")
    return Prepared((sudo, "-n", "-u", user, "--", *argv), safe_to_repeat=repeat)


def declares_safe_to_repeat(handler: Path) -> bool:
    """The handler (already checked: ours, not writable by others) has the mark line near its top."""
    try:
        with handler.open("rb") as file:
            head = file.read(MARK_BYTES).decode(errors="replace")
    except OSError:
        return False
    return any(line.strip() == SAFE_TO_REPEAT_MARK for line in head.splitlines())


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())


def environment(policy: Policy, thing_name: str, job_id: str, step: str) -> dict[str, str]:
    """The whole environment of a handler: nothing of the agent's own leaks through."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "IOT_JOBS_THING_NAME": thing_name,
        "IOT_JOBS_JOB_ID": job_id,
        "IOT_JOBS_STEP": step,
        "IOT_JOBS_HANDLER_DIR": str(policy.handler_dir),
    }
    if policy.dry_run:
        env["IOT_JOBS_DRY_RUN"] = "1"
    if policy.download_dir is not None:
        env["IOT_JOBS_DOWNLOAD_DIR"] = str(policy.download_dir)
    return env
