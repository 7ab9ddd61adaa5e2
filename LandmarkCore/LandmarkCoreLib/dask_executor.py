"""The batch runner's Dask executor: a local cluster of N worker processes, or an existing scheduler.

Inputs and outputs are paths, so every worker must see the same storage (one machine, or a shared file
system mounted at the same path). The detector (with its loaded model) is sent to each worker once, as a
worker plugin, which the scheduler also gives to workers that join or restart later. A
worker that dies has its inputs rerun elsewhere by the scheduler; an input that has killed
``ALLOWED_FAILURES + 1`` workers is recorded as failed. Needs the optional extra ``.[dask]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import dask
import distributed

from .batch import BatchInput, Detector, run_one
from .errors import InputError

#: Reruns of an input whose worker died (the scheduler's ``distributed.scheduler.allowed-failures``).
ALLOWED_FAILURES = 2
PLUGIN_NAME = "landmark-detector"


class DetectorPlugin(distributed.WorkerPlugin):
    """Holds the detector on a worker (a dask.distributed WorkerPlugin: ``setup`` is called once there)."""

    name = PLUGIN_NAME

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def setup(self, worker) -> None:
        """Nothing to prepare: the detector arrived with the plugin."""

    def teardown(self, worker) -> None:
        """Nothing to release."""


def run_on_worker(item: BatchInput, output: Path, threads: int | None) -> dict:
    """:func:`run_one` with the detector this worker was given once."""
    return run_one(distributed.get_worker().plugins[PLUGIN_NAME].detector, item, output, threads)


class DaskExecutor:
    """Runs :func:`~LandmarkCoreLib.batch.run_one` for each input as a Dask task."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, threads: int | None = None):
        self._cluster = None
        if scheduler:
            self.name = f"dask scheduler {scheduler}"
            try:
                self._client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler '{scheduler}'", f"cannot be reached ({exc})") from None
        else:
            self.name = f"local dask cluster of {workers} workers"
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                    env={"OMP_NUM_THREADS": str(threads or 1)},
                )
            self._client = distributed.Client(self._cluster)
        self._futures: list = []

    @property
    def client(self):
        return self._client

    def map(
        self, detector: Detector, items: Sequence[BatchInput], output: Path, threads: int | None
    ) -> Iterator[tuple[BatchInput, dict]]:
        self._client.register_plugin(DetectorPlugin(detector), name=PLUGIN_NAME)
        by_key = {}
        for index, item in enumerate(items):
            future = self._client.submit(
                run_on_worker, item, output, threads, key=f"detect-{index}-{item.stem}", pure=False
            )
            by_key[future.key] = item
            self._futures.append(future)
        for future in distributed.as_completed(self._futures):
            item = by_key[future.key]
            yield item, self._record(future, item, output, detector)

    def _record(self, future, item: BatchInput, output: Path, detector: Detector) -> dict:
        try:
            return future.result()
        except distributed.KilledWorker as exc:
            reason = f"'{item.source}': killed {ALLOWED_FAILURES + 1} workers in a row ({exc}); not retried"
        except Exception as exc:  # noqa: BLE001 (a task that fails outside run_one is still one failed input)
            reason = f"'{item.source}': task failed on the cluster ({type(exc).__name__}: {exc})"
        name = output / detector.output_names(item.stem)[0]
        return {
            "input": str(item.source),
            "output": str(name),
            "status": "failed",
            "reason": reason,
            "worker": "",
        }

    def close(self) -> None:
        """Cancel what is still queued (Ctrl-C) and shut a local cluster down."""
        if self._futures:
            self._client.cancel(self._futures)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
