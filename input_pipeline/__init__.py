"""Dataset readers, the tf.data pipeline, motion features and the synthetic dataset."""
import os as _os

# TensorFlow (tf.data, tensorflow-datasets) prints start-up notices (oneDNN, CPU features)
# through its C++ log when first imported; a user who set the level keeps it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
