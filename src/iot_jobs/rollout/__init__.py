"""The live rollout view of a job: ``watch_job`` (used by the console's ``watch-job`` and the fleet).

- ``describe``: boto3 DescribeJob / ListJobExecutionsForJob responses -> a ``Snapshot``;
- ``clock``: the service's clock estimated from its timestamps (a sped-up local service);
- ``timeline``: counts by status over time;
- ``model``: the pure view model (bars, pace, abort criteria, retries, elapsed, estimate);
- ``text``: the live frame, change lines, the summary table and the text chart;
- ``report``: the self-contained HTML report (inline SVG, data as JSON);
- ``sinks``: live redraw, one line per change, or JSON documents;
- ``watch``: the polling loop, ``watch_job``.
"""

from .watch import watch_job

__all__ = ["watch_job"]
