"""``iot-jobs-agent``: the console's connection flags, environment and config file, plus the agent's own.

Connection settings come from ``iot_jobs.cli`` (flag > ``IOT_JOBS_*`` > config file > default, and
``--local``); the agent's flags are below. Logs go to stderr, one line per decision.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from iot_jobs.cli import add_connection_options, connection_defaults, resolve
from iot_jobs.errors import IotJobsError
from iot_jobs.settings import MQTT_VERSIONS, Settings
from iot_jobs.version import add_version_flag

from .handlers import Policy, Refused, check_directory
from .install import install_handlers
from .job import Options

log = logging.getLogger("iot_jobs_agent")


def default_handler_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "iot-jobs" / "handlers"


def parser(defaults: dict[str, object]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iot-jobs-agent",
        description="A device that runs its own AWS IoT jobs (Device Client job documents) with safe handlers.",
        epilog="Connection options can also be set as IOT_JOBS_<NAME> or in the console's config file. "
        "See docs/agent.md.",
    )
    add_connection_options(p, defaults)
    add_version_flag(p)
    p.add_argument("--handlers", type=Path, default=None, help=f"handler directory (default {default_handler_dir()})")
    p.add_argument("--allow-run-command", action="store_true", help="allow runCommand actions (off by default)")
    p.add_argument(
        "--run-as-user",
        action="append",
        default=[],
        metavar="USER",
        help="a user that runAsUser may name (switched to with sudo -n -u); repeatable",
    )
    p.add_argument("--max-concurrent", type=int, default=1, help="job executions run at once (default 1)")
    p.add_argument("--step-timeout", type=float, default=3600.0, help="seconds a step may run (default 3600)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL (default 5)")
    p.add_argument("--dry-run", action="store_true", help="handlers get IOT_JOBS_DRY_RUN=1: they say, not do")
    p.add_argument(
        "--download-dir", type=Path, default=None, help="where download-file.sh may write (default: nowhere)"
    )
    p.add_argument(
        "--install-handlers",
        action="store_true",
        help="copy the shipped handlers (managed templates' operations) into --handlers DIR and exit",
    )
    return p


async def _serve(options: Options, settings: Settings) -> None:
    from .executor import Executor
    from .link import Link

    link = Link(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    executor = Executor(link, options)
    work = asyncio.create_task(executor.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            work.result()
        log.info("stopping: running handlers are stopped, their executions stay IN_PROGRESS")
    finally:
        work.cancel()
        for _job, task in list(executor.running.values()):
            task.cancel()
        tasks = [work, *(t for _j, t in executor.running.values())]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        stopping.cancel()
        link.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        args = parser(connection_defaults(argv)).parse_args(argv)
        if args.mqtt not in MQTT_VERSIONS:
            raise IotJobsError(f"--mqtt must be 5 or 3.1.1, got {args.mqtt!r}", "Usage")
        if args.max_concurrent < 1:
            raise IotJobsError("--max-concurrent must be at least 1", "Usage")
        if args.step_timeout <= 0 or args.grace < 0:
            raise IotJobsError("--step-timeout must be positive and --grace not negative", "Usage")
        handler_dir = (args.handlers or default_handler_dir()).expanduser()
        if args.install_handlers:
            for line in install_handlers(handler_dir):
                print(line)
            return 0
        check_directory(handler_dir)
    except (Refused, OSError) as exc:
        print(f"iot-jobs-agent: {exc}", file=sys.stderr)
        return 2
    except IotJobsError as exc:
        print(f"iot-jobs-agent: {exc.message}", file=sys.stderr)
        return 2
    policy = Policy(
        handler_dir=handler_dir.resolve(),
        allow_run_command=args.allow_run_command,
        run_as_users=frozenset(args.run_as_user),
        dry_run=args.dry_run,
        download_dir=args.download_dir.expanduser().resolve() if args.download_dir else None,
    )
    try:
        with resolve(args) as settings:
            options = Options(
                policy=policy,
                thing_name=settings.thing_name,
                max_concurrent=args.max_concurrent,
                step_timeout=args.step_timeout,
                grace=args.grace,
            )
            log.info(
                "handlers in %s; runCommand %s; up to %d at once",
                policy.handler_dir,
                "allowed" if policy.allow_run_command else "refused",
                options.max_concurrent,
            )
            asyncio.run(_serve(options, settings))
    except IotJobsError as exc:
        print(f"iot-jobs-agent: {exc.line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
