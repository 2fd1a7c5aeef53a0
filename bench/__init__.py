"""Benchmark harness: Bananas side by side with peer Redis task queues (issue 7).

``python -m bench`` (see :mod:`bench.cli`) starts a private Redis on 127.0.0.1,
prepares one virtual environment per group of peers whose redis-py pins
agree, and runs every scenario in :mod:`bench.scenarios` against every system
in :mod:`bench.systems` that supports it.

The driver and the adapters are separate processes. Each adapter is started as
``python -m bench.systems <system> <role> <spec-json>`` inside the virtual
environment of its system (or as the Go binary for asynq) and speaks to the
driver in JSON lines (:mod:`bench.protocol`). Only :mod:`bench.protocol`,
:mod:`bench.stats` and :mod:`bench.systems` (plus the adapter of the system in
question) are imported in a peer's environment, so they use the standard
library only.
"""
