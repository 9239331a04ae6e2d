"""`AtomicPusher`: TFX's Pusher with the atomic, never-overwriting executor."""
from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class AtomicPusher(Pusher):
  """Pushes blessed models to `<base_directory>/<integer version>/`."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
