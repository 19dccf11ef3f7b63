"""Several processes (or machines) sharing one search: KerasTuner's chief/worker mode.

KerasTuner reads three environment variables::

    KERASTUNER_TUNER_ID     "chief" for the process that holds the oracle, any other name for a worker
    KERASTUNER_ORACLE_IP    the chief's address (the chief binds it)
    KERASTUNER_ORACLE_PORT  the chief's port

The chief runs no trials: it serves the oracle over gRPC until the search is
over, then trains the final run. Each worker asks it for a trial, trains it
and reports the validation score. Start every process with the same
``nnkit tune`` command line and the same ``--out DIR``: workers write their
trials under ``DIR/tune/trials/`` and the chief reads them for the report, so
on several machines DIR is a shared folder.

Port 0 means "any free port": the chief binds port 0, the system picks one,
and the chief writes it to ``DIR/tune/oracle-port``; workers given port 0
read it there (waiting for it). Nothing picks a port by binding, closing and
hoping it stays free, so two searches on one machine never collide.
``nnkit tune RECIPE --workers N`` starts a chief and N workers on this
machine this way (:func:`launch_local`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nnkit.errors import NnkitError
from nnkit.runs import write_text

PORT_FILE = "oracle-port"


def role() -> str:
    """'single', 'chief' or 'worker', from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if name not in os.environ:
            raise NnkitError(f"KERASTUNER_ORACLE_IP is set but {name} is not; a distributed search needs "
                             "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def serve(oracle, tune_dir: Path, echo, poll_s: float = 0.2) -> None:
    """The chief: serve ``oracle`` until every worker has been told to stop and every trial ended.

    KerasTuner's own ``start_server`` binds a fixed port and polls every 20 s;
    this is the same servicer, with port 0 published in a file and a short poll.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief

    port_file = Path(tune_dir) / PORT_FILE
    port_file.unlink(missing_ok=True)  # a stale port of an earlier session must not be read
    address = os.environ["KERASTUNER_ORACLE_IP"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{address}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    if not port:
        raise NnkitError(f"the chief could not listen on {address}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    write_text(port_file, f"{port}\n")
    echo(f"tune: chief serving the search on {address}:{port} (workers: KERASTUNER_ORACLE_PORT={port}, "
         f"or 0 to read {port_file})")
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll_s)
    finally:
        server.stop(grace=1)
        port_file.unlink(missing_ok=True)


def wait_for(path: Path, what: str, timeout_s: float = 600.0) -> None:
    """A worker started before its chief: wait for the file the chief writes."""
    deadline = time.monotonic() + timeout_s
    while not Path(path).is_file():
        if time.monotonic() > deadline:
            raise NnkitError(f"no {what} appeared at {path} within {timeout_s:.0f} s; start the chief "
                             "(KERASTUNER_TUNER_ID=chief) with the same command and --out")
        time.sleep(0.2)


def await_port(tune_dir: Path, timeout_s: float = 600.0) -> None:
    """A worker given port 0: wait for the chief's port file and use its port."""
    if os.environ.get("KERASTUNER_ORACLE_PORT") != "0":
        return
    port_file = Path(tune_dir) / PORT_FILE
    wait_for(port_file, "port published by the chief", timeout_s)
    os.environ["KERASTUNER_ORACLE_PORT"] = port_file.read_text().strip()


def launch_local(argv: list[str], workers: int, tune_dir: Path, echo, timeout_s: float | None = None) -> int:
    """Run ``nnkit tune`` as a chief plus ``workers`` worker processes on this machine.

    ``argv``: the tune command's arguments (with ``--out DIR``), without ``--workers``.
    The chief starts first and publishes its port; the workers start once it has.
    Returns the chief's exit code (a worker's, if one failed and the chief did not).
    """
    tune_dir = Path(tune_dir)
    (tune_dir / PORT_FILE).unlink(missing_ok=True)  # only the chief started below may publish one
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "0"}
    command = [sys.executable, "-m", "nnkit.cli", "tune", *argv]
    chief = subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": "chief"})
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not (tune_dir / PORT_FILE).is_file():
        if chief.poll() is not None:
            return chief.returncode  # it failed before serving (it said why)
        if deadline and time.monotonic() > deadline:
            chief.kill()
            raise NnkitError("the chief did not start serving in time")
        time.sleep(0.2)
    echo(f"tune: starting {workers} local workers")
    procs = [subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": f"worker{i}"}) for i in range(workers)]
    codes = [p.wait() for p in procs]
    code = chief.wait()
    return code or next((c for c in codes if c), 0)
