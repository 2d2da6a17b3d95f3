"""depth_egomotion: camera image + camera_info -> metric depth image and visual odometry.

Runs `ros2_pose.pipelines.depth_egomotion.DepthEgoMotionPipeline` (depth network per frame, pose
network over the last frames, odometry integrated from the frame-to-frame motion) on each image.

Subscribes: `image` (sensor_msgs/Image), `camera_info` (sensor_msgs/CameraInfo).
Publishes: `depth/image` (sensor_msgs/Image 32FC1, metres, the input image's size and header),
`odom/visual` (nav_msgs/Odometry, pose of the camera frame in `odom_frame`, twist in the camera
frame), TF `odom_frame -> <camera frame>` (the image's frame_id unless `camera_frame` is set),
/diagnostics. Frames before the first camera_info are dropped; non-finite network outputs publish
nothing (counted as errors). A stamp that goes backwards or jumps more than `max_time_gap_s`
restarts odometry at the identity and is logged (a looping bag).

Scale: `scale_mode: fixed` multiplies depth and translation by `metric_scale`; `scale_mode:
camera_height` estimates it per frame from a RANSAC floor-plane fit to the lower image rows and
the known `camera_height_m` (see the pipeline module).
"""
from __future__ import annotations

from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image

from ros2_pose.pipelines.depth_egomotion import DepthEgoMotionPipeline, read_motion_sidecar
from ros2_pose.resources import model_location
from ros2_pose.ros.image_conversion import ReusedImageMessage
from ros2_pose.ros.message_builders import odometry, stamp_to_ns, transform_stamped
from ros2_pose.ros.model_loading import MODEL_PARAMETERS, load_runner
from ros2_pose.ros.node_base import DropFrame, LifecycleNodeBase, make_node_main
from ros2_pose.ros.tf_broadcaster import TransformBroadcaster


class DepthEgoMotionNode(LifecycleNodeBase):
    NODE_NAME = "depth_egomotion"
    CONFIG_FILE = "depth_egomotion.yaml"
    PARAMETERS = {
        "depth_model": ("depth_egomotion_depth", "shipped model name or folder of the depth network"),
        "pose_model": ("depth_egomotion_pose", "shipped model name or folder of the pose network"),
        **MODEL_PARAMETERS,
        "scale_mode": ("fixed", "fixed (metric_scale) | camera_height (floor plane vs camera_height_m)"),
        "metric_scale": (1.0, "scale_mode fixed: factor turning network depth/translation into metres"),
        "camera_height_m": (0.0, "scale_mode camera_height: the camera's known height above the floor, metres"),
        "max_time_gap_s": (0.5, "a larger stamp jump (or any step back) restarts odometry"),
        "odometry_baseline": (1, "frames of the pose network's window each odometry step spans (1: consecutive; "
                                 "up to its sources)"),
        "odom_frame": ("odom", "parent frame of the odometry and TF"),
        "camera_frame": ("", "child frame of the odometry and TF; empty: the image's frame_id"),
        "publish_tf": (True, "broadcast odom_frame -> camera frame"),
    }

    def on_configure_node(self):
        self.depth_publisher = self.create_output_publisher(Image, "depth/image")
        self.odometry_publisher = self.create_output_publisher(Odometry, "odom/visual")
        # One message object per output, refilled every frame: publish() serialises it before returning
        self.depth_message = ReusedImageMessage("32FC1")
        self.odometry_message = Odometry()
        self.transform_message = TransformStamped()
        self.tf_broadcaster = TransformBroadcaster(self) if self.config["publish_tf"] else None
        self.camera = None
        self.pipeline = None

    def on_activate_node(self):
        c = self.config
        depth = load_runner(self, c["depth_model"])
        pose = load_runner(self, c["pose_model"])
        motion = read_motion_sidecar(model_location(c["pose_model"]))
        self.pipeline = DepthEgoMotionPipeline(
            depth, pose, target_index=motion.get("target_index"), scale_mode=c["scale_mode"],
            metric_scale=c["metric_scale"], camera_height_m=c["camera_height_m"] or None,
            max_time_gap_s=c["max_time_gap_s"], odometry_baseline=c["odometry_baseline"])
        self.create_camera_info_subscription("camera_info")
        self.create_image_subscription("image", self.on_image, desired_encoding="rgb8")

    def on_cleanup_node(self):
        self.pipeline = None

    def on_image(self, msg: Image, image):
        camera = self.camera_for(image, msg.header)
        # the pipeline writes the metric depth straight into the outgoing message's pixels
        depth_msg, depth_pixels = self.depth_message.prepare(image.shape[0], image.shape[1], msg.header)
        with self.timed("pipeline"):
            result = self.pipeline.process(image, camera, stamp_to_ns(msg.header.stamp), depth_out=depth_pixels)
        if result.reset_reason is not None:
            self.get_logger().warning(f"odometry reset: {result.reset_reason}")
        if result.depth is None:
            raise DropFrame(f"no output yet ({result.status})")
        # Never NaN: the pipeline raises NonFiniteOutputError on a non-finite network output or scale,
        # and the metric depth it wrote is finite by construction (see its metric_depth).
        self.depth_publisher.publish(depth_msg)
        if result.pose is None:
            return
        child = self.config["camera_frame"] or msg.header.frame_id
        self.odometry_publisher.publish(odometry(result.pose, msg.header.stamp, self.config["odom_frame"], child,
                                                 twist=result.twist, out=self.odometry_message))
        if self.tf_broadcaster is not None:
            self.tf_broadcaster.send_transform(transform_stamped(
                result.pose, msg.header.stamp, self.config["odom_frame"], child, out=self.transform_message))

    def diagnostic_status(self):
        status = super().diagnostic_status()
        pipeline = getattr(self, "pipeline", None)
        if pipeline is not None:
            status.values.append(KeyValue(key="odometry_resets", value=str(pipeline.resets)))
        return status


NODE_CLASS = DepthEgoMotionNode
main = make_node_main(DepthEgoMotionNode)
