"""Durable jobs: the store (SQLAlchemy), the queue interface, the runner and the worker loop."""

from f5serve.core.jobs.queue import InProcessQueue
from f5serve.core.jobs.runner import JobServices, execute_job
from f5serve.core.jobs.store import JobStore
from f5serve.core.jobs.worker import JobRunner, JobWorker

__all__ = ["InProcessQueue", "JobRunner", "JobServices", "JobStore", "JobWorker", "execute_job"]
