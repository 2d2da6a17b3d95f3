"""Fixtures for tests that run real rclpy nodes in this process.

`ros_context`: an rclpy Context of the test's own (init before, shutdown after), so tests cannot
leak nodes or a shut-down default context into each other. `executor`: a SingleThreadedExecutor on
that context; nodes added with `executor.add_node` spin in the test's own thread via the `spin_until(predicate)` / `spin_for(seconds)` fixtures.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


@pytest.fixture
def ros_context():
    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


@pytest.fixture
def executor(ros_context):
    executor = SingleThreadedExecutor(context=ros_context)
    yield executor
    for node in list(executor.get_nodes()):
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown()


@pytest.fixture
def spin_until(executor):
    """spin_until(predicate, timeout=20.0) -> bool: spins the executor until predicate() holds or
    the timeout passes; returns predicate()."""
    def spin(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        return predicate()
    return spin


@pytest.fixture
def spin_for(executor):
    """spin_for(seconds): spins the executor for that long (to let messages that should NOT come
    have their chance)."""
    def spin(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
    return spin
