"""`ImportSchemaGen` whose cache key holds the schema file's content.

TFX's ImportSchemaGen is identified by the schema file's path only, so after
an edit of `schemas/<dataset>/schema.pbtxt` a rerun reused the old schema.
This one takes the file's fingerprint (`components.fingerprint`) as an
execution property as well; the executor is TFX's own.
"""
from __future__ import annotations

from tfx import types
from tfx.components.schema_gen.import_schema_gen import component as tfx_component
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter


class SchemaImportSpec(standard_component_specs.ImportSchemaGenSpec):
  PARAMETERS = {
      **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
      "schema_fingerprint": ExecutionParameter(type=str),
  }


class SchemaImport(tfx_component.ImportSchemaGen):
  """Copies `schema_file` into a `Schema` artifact (TFX's executor)."""
  SPEC_CLASS = SchemaImportSpec

  def __init__(self, schema_file: str, schema_fingerprint: str):
    super(tfx_component.ImportSchemaGen, self).__init__(spec=SchemaImportSpec(  # pylint: disable=bad-super-call
        schema_file=schema_file, schema_fingerprint=schema_fingerprint,
        schema=types.Channel(type=standard_artifacts.Schema)))
