"""What a scrape of ``GET /metrics`` reads from the database, each with one grouped query: queued runs per target,
connections per status, secrets serving a stale version; and the whole text of a scrape (``render``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import Connection, Run, SecretHead
from credflow.services.core import Core
from credflow.services.metrics import REGISTRY
from credflow.services.secrets.cache import HARD_ERRORS


class _Rows(Collector):
    """The counts read at scrape time from one server's database."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queued = GaugeMetricFamily("credflow_runs_queued", "Runs waiting for a machine, per target.",
                                   labels=["target", "target_id"])
        connections = GaugeMetricFamily("credflow_connections", "Connections, per status.", labels=["status"])
        stale = GaugeMetricFamily("credflow_secrets_stale", "Secrets serving their last good version while their "
                                                             "vault fails (up to stale_if_error_seconds).")
        with self.core.db.read() as s:
            for machine_id, group_id, count in s.execute(
                    select(Connection.machine_id, Connection.machine_group_id, func.count(Run.id))
                    .join(Connection, Connection.id == Run.connection_id).where(Run.status == RunStatus.QUEUED)
                    .group_by(Connection.machine_id, Connection.machine_group_id)):
                target = ("machine", machine_id) if machine_id else ("machine_group", group_id or "none")
                queued.add_metric(list(target), count)
            for status, count in s.execute(select(Connection.status, func.count(Connection.id))
                                           .group_by(Connection.status)):
                connections.add_metric([status], count)
            stale.add_metric([], s.scalar(select(func.count(SecretHead.id))
                                          .where(SecretHead.error_code.is_not(None),
                                                 SecretHead.error_code.not_in(list(HARD_ERRORS)))) or 0)
        yield from (queued, connections, stale)


def render(core: Core) -> bytes:
    """The whole text a scrape receives: the counters of this process and the counts of the database."""
    rows = CollectorRegistry(auto_describe=False)
    rows.register(_Rows(core))
    return generate_latest(REGISTRY) + generate_latest(rows)
