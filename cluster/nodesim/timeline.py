"""A simulated pod's whole life as a list of stages, computed once when the kubelet admits it.

A stage is what the pod's status is from a moment on (seconds after admission): its phase and
every container's state. The kubelet writes a stage when its time comes and schedules the next
one with a single delayed queue entry, so a pod costs no task and no polling; stages that fall on
the same instant collapse into one write (only the last is written).

Rules (kube's kubelet, simplified to what controllers observe):

- ``start-delay`` > 0: first a Pending stage with containers waiting (ContainerCreating, or
  PodInitializing behind init containers).
- Init containers run one after another. A non-zero init exit ends the pod Failed under
  restartPolicy Never; otherwise the init container is left waiting in CrashLoopBackOff (steady).
- Main containers: ``restarts`` crashing runs (all containers crash together), each restarted in
  place (restartCount + 1, lastState terminated) after ``restart_delay`` (a CrashLoopBackOff stage
  when > 0); under Never the first crash is final. Then the final run, each container ending with
  its own exit code after its own duration. Under OnFailure a non-zero final exit leaves the
  container waiting in CrashLoopBackOff (steady; kube would keep restarting it), a zero one
  Completed. Under Always the final run never ends (a server process).
- Phase: Pending until the main containers run, Running while any runs or restarts, Succeeded when
  all ended with 0 and none restarts, Failed when all ended and one failed (Never only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .behaviour import PodBehaviour

__all__ = ["ContainerState", "Stage", "Terminated", "build_timeline"]


@dataclass(frozen=True, slots=True)
class Terminated:
    """One finished run of a container; times are seconds after admission."""

    exit_code: int
    started: float
    finished: float

    @property
    def reason(self) -> str:
        return "Completed" if self.exit_code == 0 else "Error"


@dataclass(frozen=True, slots=True)
class ContainerState:
    """A container at one stage. Invariant: ``terminated`` is set iff ``state == "terminated"``;
    ``started`` is meaningful only when running; ``ready`` only when running."""

    state: str  # "waiting" | "running" | "terminated"
    reason: str = ""
    started: float = 0.0
    terminated: Terminated | None = None
    last: Terminated | None = None
    restart_count: int = 0
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Stage:
    """The pod from ``at`` seconds after admission on."""

    at: float
    phase: str
    init: tuple[ContainerState, ...]
    main: tuple[ContainerState, ...]
    started: tuple[int, ...] = ()
    """Indexes of main containers that began a run at this stage (they log)."""

    @property
    def initialized(self) -> bool:
        return all(c.terminated is not None and c.terminated.exit_code == 0 for c in self.init)

    @property
    def containers_ready(self) -> bool:
        return bool(self.main) and all(c.ready for c in self.main)


def build_timeline(
    behaviour: PodBehaviour,
    *,
    restart_policy: str,
    init_run_seconds: float,
    restart_delay_seconds: float,
) -> list[Stage]:
    """Every stage of a pod's life in time order (see the module docstring). Never empty."""
    stages: list[Stage] = []
    n_main = len(behaviour.containers)
    waiting_reason = "PodInitializing" if behaviour.init_exit_codes else "ContainerCreating"
    main = tuple(ContainerState("waiting", waiting_reason) for _ in range(n_main))
    init = [ContainerState("waiting", "PodInitializing") for _ in behaviour.init_exit_codes]
    t = behaviour.start_delay_seconds
    if t > 0 or not n_main:
        stages.append(Stage(0.0, "Pending", tuple(init), main))
    never = restart_policy == "Never"

    for i, (_name, code) in enumerate(behaviour.init_exit_codes):
        init[i] = ContainerState("running", started=t)
        stages.append(Stage(t, "Pending", tuple(init), main))
        end = t + init_run_seconds
        term = Terminated(code, t, end)
        if code != 0:
            if never:
                init[i] = ContainerState("terminated", terminated=term)
                stages.append(Stage(end, "Failed", tuple(init), main))
            else:
                init[i] = ContainerState("waiting", "CrashLoopBackOff", last=term, restart_count=1)
                stages.append(Stage(end, "Pending", tuple(init), main))
            return stages
        init[i] = ContainerState("terminated", terminated=term)
        t = end
    init_done = tuple(init)
    if not n_main:
        return stages

    crash_runs = 0 if never else behaviour.restarts
    last: list[Terminated | None] = [None] * n_main
    everyone = tuple(range(n_main))
    for run in range(crash_runs + 1):
        final = run == crash_runs
        running = tuple(
            ContainerState("running", started=t, last=last[k], restart_count=run, ready=True)
            for k in range(n_main)
        )
        stages.append(Stage(t, "Running", init_done, running, started=everyone))
        if final and restart_policy == "Always":
            return stages  # a server process: the final run never ends
        if not final:
            codes = [c.crash_exit_code for c in behaviour.containers]
            end = t + behaviour.run_duration(codes[0])
            last = [Terminated(code, t, end) for code in codes]
            if restart_delay_seconds > 0:
                backoff = tuple(
                    ContainerState("waiting", "CrashLoopBackOff", last=term, restart_count=run + 1)
                    for term in last
                )
                stages.append(Stage(end, "Running", init_done, backoff))
            t = end + restart_delay_seconds
            continue
        # The final run: each container ends at its own time with its own code.
        crash_first = never and behaviour.restarts > 0
        codes = [
            c.crash_exit_code if crash_first else c.final_exit_code for c in behaviour.containers
        ]
        ends = [t + behaviour.run_duration(code) for code in codes]
        states = list(running)
        for end in sorted(set(ends)):
            for k in range(n_main):
                if ends[k] != end:
                    continue
                term = Terminated(codes[k], t, end)
                if codes[k] != 0 and not never:
                    states[k] = ContainerState(
                        "waiting", "CrashLoopBackOff", last=term, restart_count=run + 1
                    )
                else:
                    states[k] = replace(states[k], state="terminated", terminated=term, ready=False)
            stages.append(Stage(end, _phase(states, never), init_done, tuple(states)))
    return stages


def _phase(states: list[ContainerState], never: bool) -> str:
    if any(s.state != "terminated" for s in states):
        return "Running"
    failed = any(s.terminated is not None and s.terminated.exit_code != 0 for s in states)
    return "Failed" if failed and never else "Succeeded"
