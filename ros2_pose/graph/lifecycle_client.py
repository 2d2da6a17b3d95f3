"""Drive lifecycle nodes in other processes through their services (what `ros2 lifecycle set` does).

ROS glue. A helper node in the caller's context asks `<node>/get_parameters` whether the node
starts itself (`autostart`), and otherwise calls `<node>/change_state` with configure, then
activate. The caller's executor spins the helper (a MultiThreadedExecutor in another thread), so
these calls block on futures with timeouts rather than spinning themselves.
"""
from __future__ import annotations

import os
import threading

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node


class LifecycleTransitionError(RuntimeError):
    """A lifecycle service did not appear in time, or a transition was refused."""


class LifecycleClient:
    def __init__(self, context, executor):
        self.node = Node(f"ros2_pose_up_{os.getpid()}", context=context)
        self.executor = executor
        executor.add_node(self.node)

    def _call(self, srv_type, service: str, request, timeout_s: float):
        client = self.node.create_client(srv_type, service)
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise LifecycleTransitionError(f"service {service} did not appear within {timeout_s:.0f} s")
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(timeout_s):
                raise LifecycleTransitionError(f"service {service} did not answer within {timeout_s:.0f} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def autostart(self, node: str, timeout_s: float) -> bool:
        """Whether `node` (fully qualified name) has a true `autostart` parameter."""
        response = self._call(GetParameters, f"{node}/get_parameters",
                              GetParameters.Request(names=["autostart"]), timeout_s)
        value = response.values[0] if response.values else None
        return bool(value is not None and value.type == ParameterType.PARAMETER_BOOL and value.bool_value)

    def configure_and_activate(self, node: str, timeout_s: float) -> None:
        for transition_id, label in ((Transition.TRANSITION_CONFIGURE, "configure"),
                                     (Transition.TRANSITION_ACTIVATE, "activate")):
            request = ChangeState.Request(transition=Transition(id=transition_id))
            response = self._call(ChangeState, f"{node}/change_state", request, timeout_s)
            if not response.success:
                raise LifecycleTransitionError(f"node {node} refused the {label} transition")

    def destroy(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
