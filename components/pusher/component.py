"""`AtomicPusher`: TFX's Pusher with the atomic, never-overwriting executor."""
from tfx.components import Pusher
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components.pusher import executor


class AtomicPusherSpec(standard_component_specs.PusherSpec):
  PARAMETERS = {**standard_component_specs.PusherSpec.PARAMETERS,
                "code_fingerprint": ExecutionParameter(type=str)}


class AtomicPusher(Pusher):
  """Pushes blessed models to `<base_directory>/<integer version>/`.

  Takes TFX Pusher's arguments; the fingerprint of this package's code is
  added to its execution properties (the cache key).
  """
  SPEC_CLASS = AtomicPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, **kwargs):
    tfx_spec = Pusher(**kwargs).spec  # TFX's argument handling
    base_component.BaseComponent.__init__(self, spec=AtomicPusherSpec(
        **tfx_spec.exec_properties, **tfx_spec.inputs, **tfx_spec.outputs,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__)))
