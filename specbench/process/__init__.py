"""Process hygiene: no server outlives the sweep that launched it, and none is mistaken
for another.

``managed`` starts an engine's server in its own process group under ``guardian``
(which stops the group when its parent dies, even by SIGKILL) and stops the whole
group; ``server_pidfile`` records every launched server so a later run can reap what a
crashed one left; ``liveness`` tells a live process from a recycled PID; ``shm``
removes the shared-memory files a stopped server left behind. Nothing here knows about
engines or measurements: it sits below the harness, which uses it. Import from the
modules.
"""
