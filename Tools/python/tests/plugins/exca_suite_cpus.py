"""A pytest plugin (``-p exca_suite_cpus``) for the runs of exca's own suite (test_exca_suite.py).

exca's pool backends size their pool as ``os.cpu_count() - 1`` and run inline below two workers, so on a
2-core machine exca's ThreadPool tests fail on exca itself and check nothing. Both runs, exca's and
Casket's, report at least 4 CPUs, so those tests run a real pool on every machine.
"""

import os

if (os.cpu_count() or 1) < 4:
    os.cpu_count = lambda: 4
