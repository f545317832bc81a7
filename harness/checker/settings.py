"""What the kata process tells each checker (the pytest process it starts) about its run: one
typed value, passed as JSON in one environment variable and read once, when pytest configures.

- events: the path of the runner's events socket. The checker connects to it first thing, before
  any learner code is imported; the runner accepts that one connection and removes the path, so
  no other process (a worker, anything it starts) can send verdicts.
- threads: torch's threads in the checker (its worker follows), when runs go side by side.
- hide, worker_memory_gib, worker_cpu_seconds: for isolated runs, what the worker may not see and
  its limits.
"""
import json
import os
from dataclasses import asdict, dataclass

ENV = "KATA_RUN"


@dataclass(frozen=True)
class CheckerSettings:
    events: str = ""
    hide: tuple = ()
    worker_memory_gib: "float | None" = None
    worker_cpu_seconds: "float | None" = None
    threads: "int | None" = None

    def to_env(self) -> dict:
        return {ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ=os.environ) -> "CheckerSettings":
        value = environ.get(ENV)
        if not value:
            return cls()
        fields = json.loads(value)
        return cls(events=str(fields.get("events") or ""), hide=tuple(str(path) for path in fields.get("hide") or ()),
                   worker_memory_gib=fields.get("worker_memory_gib"), worker_cpu_seconds=fields.get("worker_cpu_seconds"),
                   threads=fields.get("threads"))
