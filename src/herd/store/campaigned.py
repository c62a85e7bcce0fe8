"""What a store keeps of campaigns and answers about them: :class:`CampaignRecord`, what an
injection did (:class:`Injected`), what a rerun put back (:class:`Requeued`), who asked
(:class:`Origin`), and :class:`CampaignStore`, the part of the :class:`~herd.store.base.Store`
protocol that documents the campaign transactions (written once in :mod:`herd.store.campaigns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from herd.core.campaign import Group, Run, Template


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A campaign: its template, the workflow that holds its task instances, where they run;
    ``closed`` is when ``herd campaign close`` ended it (None: runs may still come)."""

    id: int
    name: str
    workflow_id: int
    template: Template
    source: str | None
    workdir: str
    created: float
    closed: float | None
    runs: int


@dataclass(frozen=True, slots=True)
class Origin:
    """Who changes a campaign: recorded as the run (``herd runs``) its new tasks are queued
    under."""

    host: str
    user: str
    pid: int
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Injected:
    """What an injection (or a close) did: the runs new to the campaign, those it already had
    (nothing done for them), the groups it closed, the runs that came after their group of a
    grouped task closed (``(run, task)``: that task does not include them), and how many task
    instances it queued under run ``run_id`` (None: nothing queued)."""

    added: tuple[int, ...] = ()
    known: tuple[int, ...] = ()
    closed: tuple[Group, ...] = ()
    late: tuple[tuple[int, str], ...] = ()
    queued: int = 0
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class Requeued:
    """What a rerun or an invalidation put back in the queue (``tasks``, downstream included),
    left alone (``running``: a worker holds them), and put back but cancelled again at once
    (``blocked``: a task they need failed and is not rerun)."""

    tasks: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    run_id: int | None = None


@runtime_checkable
class OpenCampaigns(Protocol):
    """A store that tells whether campaigns are open (every :class:`CampaignStore`, and the
    server's HTTP client)."""

    def open_campaigns(self, workflows: Sequence[int] | None = None) -> int:
        """How many campaigns still open (runs may come) have one of ``workflows`` (any:
        None): a worker serving one does not stop when its queue is empty."""
        ...


@runtime_checkable
class CampaignStore(OpenCampaigns, Protocol):
    """Campaigns in a store. A campaign's task instances are tasks of its own workflow
    (format ``campaign``) and queued like a submitted workflow's, so workers run them with no
    change; an injection queues a run's instances (and those of the groups it completes) in one
    transaction, with the unmet-needs counters and children of the instances already queued."""

    def create_campaign(
        self, name: str, template: Template, *, source: str | None, workdir: str, now: float
    ) -> CampaignRecord:
        """Record a new campaign and its (empty) workflow, both named ``name``."""
        ...

    def campaign(self, name: str) -> CampaignRecord | None:
        """The campaign called ``name``, or None."""
        ...

    def campaigns(self) -> list[CampaignRecord]:
        """Every campaign, oldest first."""
        ...

    def campaign_runs(self, campaign_id: int) -> list[Run]:
        """The campaign's runs, by number."""
        ...

    def campaign_groups(self, campaign_id: int) -> list[Group]:
        """The campaign's closed groups, in closing order."""
        ...

    def add_runs(
        self, campaign_id: int, runs: Sequence[Run], *, now: float, origin: Origin
    ) -> Injected:
        """In one transaction: record the runs the campaign does not have yet (a known run is
        left as it is), queue their instances, close the groups their arrival completes and
        queue those groups' instances. Refused (:class:`~herd.errors.UsageError`) once the
        campaign is closed. Workers waiting for work are woken."""
        ...

    def close_groups(
        self,
        campaign_id: int,
        *,
        task: str | None,
        values: Sequence[str] | None,
        campaign: bool,
        now: float,
        origin: Origin,
    ) -> Injected:
        """Close open groups by hand (of ``task``, every grouped task: None; with a value
        written as one of ``values``, every value: None) and queue their instances;
        ``campaign``: close the campaign too (every open group, no more runs)."""
        ...

    def requeue(
        self, campaign_id: int, tasks: Sequence[str], *, now: float, origin: Origin
    ) -> Requeued:
        """Put ``tasks`` and every queued task downstream of them back in the queue, their
        tries and recoveries reset (a task a worker holds now is left alone)."""
        ...
