"""The DAG, defined once for every runner (Beam, local, Kubeflow)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
# Not `from tfx import v1`: it also imports the Google Cloud AI Platform
# extensions, 6 of the 20 s a cached rerun took.
from tfx.components import ExampleValidator
from tfx.components import Trainer
from tfx.components import Tuner
from tfx.dsl.compiler import compiler
from tfx.dsl.components.common.importer import Importer
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2
from tfx.proto import trainer_pb2
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import standard_artifacts

from components import fingerprint
from components.baseline.component import LatestPushedModel
from components.evaluator.component import BaselineEvaluator
from components.ingestion.component import MnistExampleGen
from components.ingestion.data_fingerprint import DataFingerprint
from components.ingestion import datasets
from components.pusher.component import AtomicPusher
from components.report.component import Report
from components.schema.component import SchemaImport
from components.scoring.component import TestSplitScorer
from components.statistics.component import StatisticsGen
from components.statistics.component import stats_options
from components.validation.component import ValidationGate
from pipeline import config as config_lib

TRAINER_RUN_FN = "components.trainer.task.run_fn"
TUNER_FN = "components.tuner.task.tuner_fn"
BASELINE_NODE_ID = "LatestPushedModel"
DATA_FINGERPRINT_NODE_ID = "DataFingerprint"  # Kubeflow: reads the data first
PUSHER_NODE_ID = "Pusher"
REPORT_NODE_ID = "Report"
# Never from the cache, on every runner: the data's digest is read when the
# run starts; the Pusher's outcome is the serving directory as it is now (a
# cached "pushed to V" would stand for a version removed since; run again,
# it pushes, or finds its model already in service); the report describes
# its own run.
UNCACHED_NODE_IDS = (DATA_FINGERPRINT_NODE_ID, PUSHER_NODE_ID,
                     REPORT_NODE_ID)


def create_pipeline(
    config: config_lib.PipelineConfig,
    *,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    schema_path: Optional[str] = None,
    in_service: Optional[str] = None,
    data_digest: Optional[str] = None,
    metadata_path: Optional[str] = None,
) -> tfx_pipeline.Pipeline:
  """Ingest -> statistics/validation -> train -> evaluate vs. baseline -> push
  -> score on the test split -> report.

  Every setting comes from `config` (`pipeline.config.PipelineConfig`); the
  model is pushed to `config.serving_model_dir/<version>` only if TFMA
  blesses it against the model in service.

  What the run reads from outside, taken when a runner builds the DAG just
  before running it (local), as cache keys: `in_service`
  (`serving.baseline.InService` as JSON), the model in service and the best
  ever, which the baseline lookup then outputs; `data_digest`
  (`sources.data_digest`), the data. Leave both None for a DAG compiled now
  and run later (Kubeflow): its baseline lookup then reads the serving
  directory when it runs and is not cached, and a `DataFingerprint` task
  reads the data first and hands its digest to the ingestion.
  `schema_path` overrides where the tasks read the schema (Kubeflow: the
  image's copy); its fingerprint is always that of `config.schema_path`.
  Every component of ours has the fingerprint of its code in its cache key.
  `metadata_path`: a local ML Metadata file the Report reads each
  component's state and duration from (none on Kubeflow).
  """
  dataset = config.dataset
  pipeline_name, serving_model_dir = (config.pipeline_name,
                                      config.serving_model_dir)
  ingestion = config.ingestion
  data_dir, tfds_data_dir, download_cache_dir = (
      ingestion.data_dir, ingestion.tfds_data_dir,
      ingestion.download_cache_dir)
  trainer_config = config.trainer.to_custom_config()
  tuner_config = _tuner_config(config)
  tuned_hyperparameters_uri = config.tuner.tune_from
  schema_fingerprint = fingerprint.file_fingerprint(config.schema_path)
  schema_path = schema_path or config.schema_path
  data_fingerprint = None
  if data_digest is None:
    data_fingerprint = DataFingerprint(
        dataset=dataset, data_dir=data_dir or "",
        tfds_data_dir=tfds_data_dir or "",
        cache_dir=download_cache_dir or "",
        code_fingerprint=fingerprint.code_fingerprint(
            DataFingerprint.__module__)).with_id(DATA_FINGERPRINT_NODE_ID)
  example_gen = MnistExampleGen(
      dataset=dataset, seed=config.seed,
      train_fraction=ingestion.train_fraction,
      max_examples=ingestion.max_examples, data_dir=data_dir,
      tfds_data_dir=tfds_data_dir, cache_dir=download_cache_dir,
      data_digest=(data_digest if data_fingerprint is None else
                   data_fingerprint.outputs["digest"].future()[0].value))

  # TFDV statistics, in process unless BEAM_PIPELINE_ARGS name a runner
  # elsewhere (components/statistics): ~2 s on all 70,000 images;
  # STATS_SAMPLE_RATE < 1 samples for larger data.
  statistics_gen = StatisticsGen(
      examples=example_gen.outputs["examples"],
      stats_options=stats_options(config.stats_sample_rate))
  schema_gen = SchemaImport(
      schema_file=schema_path,
      schema_fingerprint=schema_fingerprint).with_id("ImportSchemaGen")
  example_validator = ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  validation_gate = ValidationGate(
      anomalies=example_validator.outputs["anomalies"],
      code_fingerprint=fingerprint.code_fingerprint(
          ValidationGate.__module__))

  # TUNE=1: a KerasTuner search (components/tuner) whose best
  # hyperparameters the Trainer trains (`config.tuner`); `tuner_config` is
  # `tuner.task.tuner_custom_config(...)`. Or frozen: an earlier Tuner's
  # best_hyperparameters directory, imported (TUNE_FROM=).
  tuner = None
  hyperparameters = None
  if tuned_hyperparameters_uri:
    tuner = Importer(
        source_uri=tuned_hyperparameters_uri,
        artifact_type=standard_artifacts.HyperParameters).with_id(
            "TunedHyperparameters")
    hyperparameters = tuner.outputs["result"]
  elif tuner_config:
    tuner = Tuner(
        tuner_fn=TUNER_FN,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config={**tuner_config,
                       "code_fingerprint": fingerprint.code_fingerprint(
                           TUNER_FN.rsplit(".", 1)[0])})
    tuner.add_upstream_node(validation_gate)
    hyperparameters = tuner.outputs["best_hyperparameters"]

  trainer = Trainer(
      run_fn=TRAINER_RUN_FN,
      hyperparameters=hyperparameters,
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      train_args=trainer_pb2.TrainArgs(splits=["train"]),
      eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
      custom_config={**trainer_config,
                     "code_fingerprint": fingerprint.code_fingerprint(
                         TRAINER_RUN_FN.rsplit(".", 1)[0])})

  # The baseline: the model in service, read from the serving directory
  # (works on every orchestrator, unlike a TFX Resolver on open-source KFP).
  baseline = LatestPushedModel(
      serving_model_dir=serving_model_dir,
      in_service=in_service).with_id(BASELINE_NODE_ID)
  baseline.add_upstream_node(trainer)  # look it up just before evaluating

  evaluator = BaselineEvaluator(
      examples=example_gen.outputs["examples"],
      model=trainer.outputs["model"],
      baseline_model=baseline.outputs["model"],
      schema=schema_gen.outputs["schema"],  # TFMA decodes only the label
      example_splits=["eval"],
      eval_config=config.gate.eval_config(dataset)).with_id("Evaluator")

  pusher = AtomicPusher(
      model=trainer.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory=serving_model_dir))).with_id(PUSHER_NODE_ID)
  # Bad data never reaches serving: the data checks run while the Trainer
  # trains (side by side under RUNNER=concurrent and on Kubeflow), and no
  # push happens unless they passed. A failed check stops the run: the
  # Trainer stops within 32 batches (components/cancellation).
  pusher.add_upstream_node(validation_gate)

  # Reported, never gated: the official test split is looked at only once
  # the Evaluator has decided on the eval split (candidate and baseline).
  scorer = TestSplitScorer(
      examples=example_gen.outputs["examples"],
      model=trainer.outputs["model"],
      baseline_model=baseline.outputs["model"],
      class_names=datasets.get_dataset_info(dataset).class_names)
  scorer.add_upstream_node(evaluator)

  tuner_outputs = {}
  if hyperparameters is not None:
    tuner_outputs["hyperparameters"] = hyperparameters
  if tuner is not None and not tuned_hyperparameters_uri:
    tuner_outputs["tuner_results"] = tuner.outputs["tuner_results"]
  report = Report(
      run_settings={
          "pipeline_name": pipeline_name, "dataset": dataset,
          "serving_model_dir": serving_model_dir,
          "min_accuracy": config.gate.accuracy_threshold(dataset),
          "max_accuracy_drop": config.gate.max_accuracy_drop,
          "trainer": trainer_config,
          "hyperparameters_frozen": bool(tuned_hyperparameters_uri),
          "settings": config.settings_record()},
      metadata_path=metadata_path,
      examples=example_gen.outputs["examples"],
      model=trainer.outputs["model"],
      model_run=trainer.outputs["model_run"],
      evaluation=evaluator.outputs["evaluation"],
      blessing=evaluator.outputs["blessing"],
      pushed_model=pusher.outputs["pushed_model"],
      test_metrics=scorer.outputs["metrics"],
      confusion_matrix=scorer.outputs["confusion_matrix"],
      **tuner_outputs).with_id(REPORT_NODE_ID)

  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=config.pipeline_root,
      components=([data_fingerprint] if data_fingerprint else []) +
                 [example_gen, statistics_gen, schema_gen, example_validator,
                  validation_gate] + ([tuner] if tuner else []) +
                 [trainer, baseline, evaluator, pusher, scorer, report],
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=config.beam_pipeline_args)


def node_ids(ir: pipeline_pb2.Pipeline) -> List[str]:
  return [node.pipeline_node.node_info.id for node in ir.nodes]


def downstream_of(ir: pipeline_pb2.Pipeline, node_id: str) -> List[str]:
  """`node_id` and every node after it, in DAG order."""
  if node_id not in node_ids(ir):
    raise ValueError(f"unknown component {node_id!r}; choose one of "
                     f"{node_ids(ir)}")
  reached = {node_id}
  for node in ir.nodes:  # compiled in topological order
    pipeline_node = node.pipeline_node
    if set(pipeline_node.upstream_nodes) & reached:
      reached.add(pipeline_node.node_info.id)
  return [n for n in node_ids(ir) if n in reached]


def compile_for_local(dag: tfx_pipeline.Pipeline,
                      rerun_from: Optional[str] = None
                      ) -> pipeline_pb2.Pipeline:
  """The IR the Beam/Local runners run; `rerun_from` and everything
  downstream of it are recomputed, not taken from the cache, and so are
  `UNCACHED_NODE_IDS`."""
  ir = compiler.Compiler().compile(dag)
  uncached = set(downstream_of(ir, rerun_from)) if rerun_from else set()
  uncached.update(UNCACHED_NODE_IDS)
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in uncached:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir


def _tuner_config(config) -> Optional[Dict[str, Any]]:
  """The Tuner's custom_config when TUNE=1, else None."""
  if not config.tuner.enabled:
    return None
  from components.tuner import task as tuner_task  # pylint: disable=g-import-not-at-top
  return tuner_task.tuner_custom_config(config.tuner, config.trainer)
