"""dolly_pose: camera image + camera_info -> the dolly's 6DoF pose (PoseStamped + TF), detections.

Runs `ros2_pose.pipelines.dolly.DollyPipeline` (detector -> 128x128 ROI crop -> pose network) on
each image; both networks are shipped models loaded through the one runner (torch | onnxruntime |
tensorrt). Detection runs inside this node by default, so the whole pipeline works on one decoded
image with no copies between stages; `dolly_detector` is the same detector as a node of its own.

Subscribes: `image` (sensor_msgs/Image, rgb8/bgr8/mono8...), `camera_info` (sensor_msgs/CameraInfo).
Publishes: `dolly/pose` (geometry_msgs/PoseStamped, camera optical frame, the image's stamp),
`dolly/detections` (ros2_pose_msgs/Detection2DArray), TF `<image frame> -> <dolly_frame>`,
`dolly/debug_image` (sensor_msgs/Image, only when `publish_debug_image`), /diagnostics.
No pose is published when no dolly is seen, the detection's score is below `score_threshold`, or
the network's pose is not finite or outside the depth limits; diagnostics count each case.
"""
from __future__ import annotations

from collections import Counter, deque

from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image

from ros2_pose.pipelines.dolly import DollyPipeline, draw_result
from ros2_pose.ros.message_builders import pose_stamped, transform_stamped
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.node_base import LifecycleNodeBase, make_node_main
from ros2_pose.ros.model_loading import MODEL_PARAMETERS, load_runner
from ros2_pose.ros.tf_broadcaster import TransformBroadcaster
from ros2_pose.nodes.dolly_detector import detections_message

# Diagnostics say "no dolly in view" when none of the last this-many frames gave a pose.
RECENT_FRAMES = 30


class DollyPoseNode(LifecycleNodeBase):
    NODE_NAME = "dolly_pose"
    CONFIG_FILE = "dolly_pose.yaml"
    PARAMETERS = {
        "detector_model": ("dolly_detector", "shipped model name (models/<name>) or folder of the detector"),
        "pose_model": ("dolly_pose_half", "shipped model name or folder of the pose network"),
        **MODEL_PARAMETERS,
        "score_threshold": (0.5, "detections below this score are not turned into poses"),
        "min_depth_m": (0.1, "poses closer than this are rejected as absurd"),
        "max_depth_m": (15.0, "poses farther than this are rejected as absurd"),
        "dolly_frame": ("dolly", "child frame of the published TF"),
        "publish_tf": (True, "broadcast <image frame> -> dolly_frame"),
        "publish_debug_image": (False, "publish dolly/debug_image with the box and pose axes drawn"),
    }

    def on_configure_node(self):
        self.pose_publisher = self.create_output_publisher(PoseStamped, "dolly/pose")
        self.detection_publisher = self.create_output_publisher(self.detection_msg_type(), "dolly/detections")
        self.debug_publisher = (self.create_output_publisher(Image, "dolly/debug_image")
                                if self.config["publish_debug_image"] else None)
        self.tf_broadcaster = TransformBroadcaster(self) if self.config["publish_tf"] else None
        self.camera = None
        self.outcomes = Counter()
        self.recent_outcomes = deque(maxlen=RECENT_FRAMES)

    @staticmethod
    def detection_msg_type():
        from ros2_pose_msgs.msg import Detection2DArray
        return Detection2DArray

    def on_activate_node(self):
        c = self.config
        detector = load_runner(self, c["detector_model"])
        pose = load_runner(self, c["pose_model"])
        self.pipeline = DollyPipeline(detector, pose, score_threshold=c["score_threshold"],
                                      min_depth_m=c["min_depth_m"], max_depth_m=c["max_depth_m"])
        self.create_camera_info_subscription("camera_info")
        self.create_image_subscription("image", self.on_image, desired_encoding="rgb8")

    def on_cleanup_node(self):
        self.pipeline = None

    def on_image(self, msg: Image, image):
        camera = self.camera_for(image, msg.header)
        with self.timed("pipeline"):
            result = self.pipeline.process(image, camera)
        self.outcomes[result.status] += 1
        self.recent_outcomes.append(result.status)
        self.detection_publisher.publish(detections_message(msg.header, result.box, result.score,
                                                            self.config["score_threshold"]))
        if result.pose is not None:
            self.pose_publisher.publish(pose_stamped(result.pose, msg.header))
            if self.tf_broadcaster is not None:
                self.tf_broadcaster.send_transform(transform_stamped(
                    result.pose, msg.header.stamp, msg.header.frame_id, self.config["dolly_frame"]))
        if self.debug_publisher is not None:
            self.debug_publisher.publish(to_image_msg(draw_result(image, camera, result), "rgb8", msg.header))

    def diagnostic_status(self):
        status = super().diagnostic_status()
        outcomes = getattr(self, "outcomes", Counter())
        for name in ("ok", "low_score", "no_detection", "rejected_pose"):
            status.values.append(KeyValue(key=f"frames_{name}", value=str(outcomes[name])))
        recent = getattr(self, "recent_outcomes", ())
        if recent and "ok" not in recent and self.is_active:
            status.message = f"no dolly in view (no pose in the last {len(recent)} frames)"
        return status


NODE_CLASS = DollyPoseNode
main = make_node_main(DollyPoseNode)
