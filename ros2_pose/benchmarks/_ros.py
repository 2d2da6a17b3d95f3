"""An rclpy executor on a background thread, for the benchmarks that run nodes in this process
(a private module: not a `bench` target)."""
from __future__ import annotations

import threading


def _spin_quietly(executor) -> None:
    try:
        executor.spin()
    except Exception:  # noqa: BLE001 - shutdown of the context ends the spin
        pass


def start_spinning(executor) -> threading.Thread:
    """Spin `executor` on a daemon thread (started), until `stop_spinning`."""
    thread = threading.Thread(target=_spin_quietly, args=(executor,), daemon=True)
    thread.start()
    return thread


def stop_spinning(executor, thread: threading.Thread | None) -> None:
    """Shut the executor down and wait for its thread: a spin thread still inside rclpy at
    interpreter exit aborts the process ("terminate called without an active exception")."""
    executor.shutdown(timeout_sec=2.0)
    if thread is not None and thread.is_alive():
        thread.join(timeout=5.0)
