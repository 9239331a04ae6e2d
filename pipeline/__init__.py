"""The MNIST / Fashion-MNIST TFX pipeline: DAG, configuration and runners."""
import os
import warnings

import components  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# Entry points of this package are command-line tools: keep TensorFlow's C++
# start-up chatter and Python 3.10 end-of-support notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", category=FutureWarning)
