"""Cross-task few-label facial landmarks (Fu et al. 2020): algorithms, without Slicer."""

import os

#: OpenMP threads that sleep when idle instead of spinning, unless the user chose otherwise (read when
#: torch loads, so it holds where this package is imported first: the CLI, the benchmark).  Measured on
#: the shared 2-core machine (load ~5): one face crop pair on 2 torch threads took 1693 ms median with
#: the default spinning threads, 37 ms with sleeping ones (one thread: 45 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
