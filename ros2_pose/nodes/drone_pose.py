"""drone_pose: camera image + camera_info -> each drone's 6DoF pose (PoseStamped + TF) and keypoints.

Runs `ros2_pose.pipelines.drone.DronePosePipeline`: per drone, a square crop around its box ->
keypoint heatmap network (one per drone model, `pose_models`) -> decoded keypoints -> OpenCV PnP.
Boxes come from the networks' coarse pass, or with `use_detections` from a Detection2DArray on
`detections` with the image's stamp (a detector node, or a bag's /ground_truth/detections); a
detection's class_id picks the network when it names a loaded drone model.

Subscribes: `image` (sensor_msgs/Image), `camera_info` (sensor_msgs/CameraInfo), `detections`
(ros2_pose_msgs/Detection2DArray, only with `use_detections`).
Publishes: `drone/pose` (geometry_msgs/PoseStamped, camera optical frame, image stamp; one message
per drone with a pose, in detection order), `drone/keypoints` (ros2_pose_msgs/ObjectKeypointsArray,
every detection; instance_id i matches TF frame `<frame_prefix><i>`), TF `<image frame> ->
<frame_prefix><i>`, `drone/debug_image` (only with `publish_debug_image`), /diagnostics (frames per
outcome: ok, too_few_keypoints, pnp_failed, rejected_pose, no_drone).
"""
from __future__ import annotations

from collections import Counter, OrderedDict

import numpy as np
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image

from ros2_pose.pipelines.drone import DroneModelInfo, DronePosePipeline, PnPSettings, draw_results
from ros2_pose.resources import model_location
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.message_builders import pose_stamped, stamp_to_ns, transform_stamped
from ros2_pose.ros.model_loading import MODEL_PARAMETERS, load_runner
from ros2_pose.ros.node_base import DropFrame, LifecycleNodeBase, make_node_main
from ros2_pose.ros.tf_broadcaster import TransformBroadcaster

# Detections kept while waiting for their image (stamps), and outcomes counted in diagnostics.
DETECTION_BUFFER = 30
OUTCOMES = ("ok", "too_few_keypoints", "pnp_failed", "rejected_pose", "no_drone")


def keypoints_message(header, results, keypoint_names, confidence_threshold: float):
    """ros2_pose_msgs/ObjectKeypointsArray of pipeline results (instance_id = index in `results`)."""
    from ros2_pose_msgs.msg import BoundingBox2D, Keypoint2D, ObjectKeypoints, ObjectKeypointsArray

    message = ObjectKeypointsArray(header=header)
    for index, result in enumerate(results):
        box = [float(v) for v in result.box]
        points = []
        for name, (x, y), confidence in zip(keypoint_names, result.keypoints, result.confidence):
            visible = confidence >= confidence_threshold
            points.append(Keypoint2D(name=name, x=float(x), y=float(y), confidence=float(np.clip(confidence, 0, 1)),
                                     visibility=Keypoint2D.VISIBLE if visible else Keypoint2D.NOT_LABELED))
        message.objects.append(ObjectKeypoints(
            header=header, class_id=result.drone_model, instance_id=index, score=float(np.clip(result.score, 0, 1)),
            box=BoundingBox2D(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3]), keypoints=points))
    return message


class DronePoseNode(LifecycleNodeBase):
    NODE_NAME = "drone_pose"
    CONFIG_FILE = "drone_pose.yaml"
    PARAMETERS = {
        "pose_models": (["drone_pose_large", "drone_pose_small"],
                        "keypoint networks, one per drone model: shipped model names or folders"),
        **MODEL_PARAMETERS,
        "decoder": ("argmax_subpixel", "heatmap decoder: argmax_subpixel | center_of_mass | soft_argmax"),
        "pnp_method": ("sqpnp", "OpenCV PnP solver: sqpnp | epnp | iterative"),
        "ransac": (True, "run PnP inside RANSAC (drops swapped rotor keypoints)"),
        "ransac_reprojection_px": (3.0, "RANSAC inlier threshold, pixels"),
        "refine": (True, "Levenberg-Marquardt refinement of the PnP pose"),
        "confidence_threshold": (0.1, "keypoints below this heatmap confidence are left out of PnP"),
        "min_keypoints": (4, "fewer confident keypoints than this: no pose (too_few_keypoints)"),
        "coarse_confidence": (0.2, "keypoint confidence that counts in the coarse pass's box"),
        "min_depth_m": (0.1, "poses closer than this are rejected"),
        "max_depth_m": (100.0, "poses farther than this are rejected"),
        "use_detections": (False, "take boxes from `detections` (same stamp as the image) instead of the coarse pass"),
        "detection_score_threshold": (0.3, "detections below this score are ignored"),
        "frame_prefix": ("drone_", "TF child frames are <frame_prefix><index>"),
        "publish_tf": (True, "broadcast <image frame> -> <frame_prefix><index>"),
        "publish_debug_image": (False, "publish drone/debug_image with boxes, keypoints and axes"),
    }

    def on_configure_node(self):
        from ros2_pose_msgs.msg import ObjectKeypointsArray

        c = self.config
        self.pnp_settings = PnPSettings(c["pnp_method"], c["ransac"], c["ransac_reprojection_px"], c["refine"],
                                        c["confidence_threshold"], int(c["min_keypoints"]))
        self.pose_publisher = self.create_output_publisher(PoseStamped, "drone/pose")
        self.keypoints_publisher = self.create_output_publisher(ObjectKeypointsArray, "drone/keypoints")
        self.debug_publisher = (self.create_output_publisher(Image, "drone/debug_image")
                                if c["publish_debug_image"] else None)
        self.tf_broadcaster = TransformBroadcaster(self) if c["publish_tf"] else None
        self.camera = None
        self.outcomes = Counter()
        self.detections = OrderedDict()
        self.pending_image = None

    def on_activate_node(self):
        c = self.config
        models = []
        for name in c["pose_models"]:
            models.append((load_runner(self, name), DroneModelInfo.from_folder(model_location(name))))
        self.pipeline = DronePosePipeline(models, c["decoder"], self.pnp_settings, c["min_depth_m"],
                                          c["max_depth_m"], c["coarse_confidence"])
        self.keypoint_names = models[0][1].keypoint_names
        self.create_camera_info_subscription("camera_info")
        if c["use_detections"]:
            from ros2_pose_msgs.msg import Detection2DArray
            self.create_input_subscription(Detection2DArray, "detections", self.on_detections, counts_as_frame=False)
        self.create_image_subscription("image", self.on_image, desired_encoding="rgb8")

    def on_cleanup_node(self):
        self.pipeline = None

    def on_detections(self, msg):
        boxes = [(np.array([d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max]), d.class_id or None)
                 for d in msg.detections if d.score >= self.config["detection_score_threshold"]]
        self.detections[stamp_to_ns(msg.header)] = boxes
        while len(self.detections) > DETECTION_BUFFER:
            self.detections.popitem(last=False)
        # The image may have come first: process it now that its boxes are here.
        if self.pending_image is not None and stamp_to_ns(self.pending_image[0].header) in self.detections:
            msg_image, image = self.pending_image
            self.pending_image = None
            self.process_safely(self.on_image)(msg_image, image)

    def on_image(self, msg: Image, image):
        camera = self.camera_for(image, msg.header)
        detections = None
        if self.config["use_detections"]:
            detections = self.detections.pop(stamp_to_ns(msg.header), None)
            if detections is None:
                self.pending_image = (msg, image)
                raise DropFrame("no detections with this image's stamp yet (kept until they arrive)")
        with self.timed("pipeline"):
            results = self.pipeline.process(image, camera, detections)
        self.publish_results(msg, results)
        if self.debug_publisher is not None:
            self.debug_publisher.publish(to_image_msg(draw_results(image, camera, results), "rgb8", msg.header))

    def publish_results(self, msg: Image, results) -> None:
        """Keypoints of every result; a PoseStamped and a TF frame for each result with a pose."""
        if not results:
            self.outcomes["no_drone"] += 1
        for result in results:
            self.outcomes[result.status] += 1
        self.keypoints_publisher.publish(keypoints_message(msg.header, results, self.keypoint_names,
                                                           self.config["confidence_threshold"]))
        for index, result in enumerate(results):
            if result.pose is None:
                continue
            self.pose_publisher.publish(pose_stamped(result.pose, msg.header))
            if self.tf_broadcaster is not None:
                self.tf_broadcaster.send_transform(transform_stamped(
                    result.pose, msg.header.stamp, msg.header.frame_id, f"{self.config['frame_prefix']}{index}"))

    def diagnostic_status(self):
        status = super().diagnostic_status()
        outcomes = getattr(self, "outcomes", Counter())
        for name in OUTCOMES:
            status.values.append(KeyValue(key=f"drones_{name}", value=str(outcomes[name])))
        return status


NODE_CLASS = DronePoseNode
main = make_node_main(DronePoseNode)
