"""Dataset readers, the tf.data pipeline, motion features and the synthetic dataset."""
import os as _os

# TensorFlow (tf.data, tensorflow-datasets) prints start-up notices (CPU features, oneDNN)
# when first imported; a user who set these keeps them. The oneDNN notice is written before
# TensorFlow reads its log level, so only turning its oneDNN kernels off silences it: this
# project uses TensorFlow to read data, never for model arithmetic.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
