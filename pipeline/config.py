"""All pipeline settings in one typed place, read from the environment.

Every `make run-local VAR=...` setting is one row of `ENV_SETTINGS`, which
maps it to a field here or in the settings type a component owns: the
ingestion's `IngestionSettings`, the Trainer's `TrainerConfig`, the gate's
`GateSettings`, the Tuner's `TunerSettings` (each in its component's
folder). `PipelineConfig.from_env()` is the only code that reads them; only
the console switches KERAS_PROGRESS and VERBOSE are read where they print.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
from typing import Any, Dict, List, Mapping, Optional, Tuple

from components import storage
from components.evaluator import settings as gate_settings
from components.ingestion import datasets
from components.ingestion import settings as ingestion_settings
from components.trainer import hparams
from components.tuner import settings as tuner_settings
import schemas

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The curated schemas: package data of the installed `schemas` package.
SCHEMAS_DIR = os.path.dirname(os.path.abspath(schemas.__file__))

RUNNERS = ("concurrent", "beam", "local")
# A LINEAGE name: it is joined with `-` and `_` to the parts the pipeline
# derives itself, which it must not be able to spell.
LINEAGE_NAME = re.compile(r"[a-z0-9]+")
DERIVED_LINEAGE = re.compile(r"loose|quick\d*|seed\d*|split[0-9p]*")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Settings of one pipeline run (see README, "Settings")."""
  dataset: str = "mnist"
  # Where the data comes from and how it is split (components/ingestion).
  ingestion: ingestion_settings.IngestionSettings = (
      ingestion_settings.IngestionSettings())
  output_dir: str = os.path.join(REPO_ROOT, "outputs")
  serving_dir: Optional[str] = None  # None: <output_dir>/serving
  lineage: str = ""  # a new value starts a fresh pipeline (no baseline)
  runner: str = "concurrent"
  seed: int = 42
  trainer: hparams.TrainerConfig = hparams.TrainerConfig()
  # The gate's rules (components/evaluator; a dataset's defaults: DatasetInfo).
  gate: gate_settings.GateSettings = gate_settings.GateSettings()
  stats_sample_rate: float = 1.0
  enable_cache: bool = True
  rerun_from: Optional[str] = None  # recompute this component and all after
  beam_args: Tuple[str, ...] = ()  # BEAM_PIPELINE_ARGS, split like a shell
  # TUNE=1 / TUNE_FROM: the Tuner's settings (components/tuner).
  tuner: tuner_settings.TunerSettings = tuner_settings.TunerSettings()

  def __post_init__(self):
    datasets.get_dataset_info(self.dataset)  # validates the name
    # SEED seeds the whole run: the examples' order, training, the search.
    if self.trainer.seed != self.seed:
      object.__setattr__(self, "trainer",
                         dataclasses.replace(self.trainer, seed=self.seed))
    if self.runner not in RUNNERS:
      raise ValueError(f"unknown runner {self.runner!r}; choose one of "
                       f"{list(RUNNERS)}")
    if not 0 < self.stats_sample_rate <= 1:
      raise ValueError("stats_sample_rate must be in (0, 1]")
    if self.lineage and (not LINEAGE_NAME.fullmatch(self.lineage) or
                         DERIVED_LINEAGE.fullmatch(self.lineage)):
      raise ValueError(
          f"LINEAGE={self.lineage!r} is not a lineage name of its own: use "
          "lower-case letters and digits, and not loose, quick<N>, seed<N> "
          "or split<NN>, which the pipeline derives from the settings")

  @property
  def pipeline_name(self) -> str:
    suffix = "".join(f"-{part}" for part in self.lineage_parts)
    return f"mnist-tfx-{self.dataset.replace('_', '-')}{suffix}"

  @property
  def lineage_parts(self) -> Tuple[str, ...]:
    """What separates this run's lineage (its baseline and serving model)
    from the default one, so that a run can only replace a model judged
    the same way, on the same comparison set: `LINEAGE`; the ingestion's
    (`split80` for TRAIN_FRACTION=0.8, `quick600` for MAX_EXAMPLES=600:
    `IngestionSettings.lineage_parts`) and, for a MAX_EXAMPLES run, the
    SEED that picks its examples (`seed42`); `loose` for a gate looser than
    the dataset's defaults (`loose_gate_settings`) unless
    ALLOW_LOOSE_GATE=1."""
    parts = [self.lineage] if self.lineage else []
    parts.extend(self.ingestion.lineage_parts)
    if self.ingestion.max_examples:
      parts.append(f"seed{self.seed}")
    if self.loose_gate_settings and not self.gate.allow_loose_gate:
      parts.append("loose")
    return tuple(parts)

  @property
  def loose_gate_settings(self) -> Tuple[str, ...]:
    """The gate settings set looser than the dataset's defaults."""
    return self.gate.loose_settings(self.dataset)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_dir, "pipelines", self.pipeline_name)

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, "metadata", f"{self.pipeline_name}.sqlite")

  @property
  def model_name(self) -> str:
    return "_".join((self.dataset,) + self.lineage_parts)

  @property
  def serving_model_dir(self) -> str:
    """TF Serving's model base path: versions are its integer subdirectories."""
    root = self.serving_dir or os.path.join(self.output_dir, "serving")
    return os.path.join(root, self.model_name)

  @property
  def schema_path(self) -> str:
    return os.path.join(SCHEMAS_DIR, self.dataset, "schema.pbtxt")

  @property
  def beam_pipeline_args(self) -> List[str]:
    """Beam options of StatisticsGen and the Evaluator: `BEAM_PIPELINE_ARGS`
    if given (e.g. `--runner=DataflowRunner --project=... --region=...
    --temp_location=gs://...`), else Beam's DirectRunner in this process.
    The (unused) container image stops TFX building an sdist of itself for
    remote workers, ~1 s per Beam component."""
    return list(self.beam_args) or [
        "--sdk_container_image=none-in-process-direct-runner",
        "--direct_running_mode=in_memory", "--direct_num_workers=1"]

  def settings_record(self) -> Dict[str, Any]:
    """Every setting of the run, the trainer's resolved from its preset (for
    summary.json)."""
    values = dataclasses.asdict(self)
    # By their names of old: flat.
    values.update(values.pop("ingestion"))
    gate = values.pop("gate")
    del values["tuner"]
    values.update(self.tuner.record())
    values.update(gate)
    values["trainer"] = dataclasses.asdict(self.trainer.resolved())
    return values

  @classmethod
  def from_env(cls, env: Mapping[str, str] = os.environ) -> "PipelineConfig":
    """Builds the config from environment variables (empty = default),
    through `ENV_SETTINGS`."""
    groups: Dict[str, Dict[str, Any]] = {}
    for name, path, parse in ENV_SETTINGS:
      raw = env.get(name, "").strip()
      if not raw:
        continue
      try:
        value = parse(raw)
      except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid "
                         f"{getattr(parse, 'kind', parse.__name__)}"
                         ) from None
      if value is not None:
        group, _, field = path.rpartition(".")
        groups.setdefault(group, {})[field] = value
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return cls(**groups.pop("", {}), **{
        group: dataclasses.replace(defaults[group], **fields)
        for group, fields in groups.items()})


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
  """Settings of `make compile-kubeflow` / `make submit-kubeflow`.

  Compiling checks them (`kubeflow_runner.check_cluster_settings`): an image
  and a pipeline root must be given, and local paths need
  `allow_local_paths`.
  """
  image: Optional[str] = None  # <registry>/mnist-tfx:<tag>, every task's
  # The Trainer's image when it requests GPUs: `make image GPU=1` (CUDA).
  gpu_image: Optional[str] = None
  # Where KFP writes artifacts; serving goes to <pipeline_root>/serving
  # unless SERVING_DIR is set. Compiling never touches it.
  pipeline_root: Optional[str] = None
  trainer_gpus: int = 0  # > 0: the Trainer task requests this many GPUs
  gpu_resource: str = "nvidia.com/gpu"  # accelerator type (Vertex: NVIDIA_L4)
  kfp_host: Optional[str] = None
  experiment: str = "mnist-tfx"
  # Local or NFS paths in the spec (a volume mounted in every pod; tests).
  allow_local_paths: bool = False
  # S3-compatible storage the pods use (s3:// roots): the endpoint (MinIO:
  # http://minio-service.kubeflow:9000; unset for AWS S3), the region, and the
  # Kubernetes secret with the keys, as "name[:access key key:secret key key]".
  s3_endpoint_url: Optional[str] = None
  s3_region: str = "us-east-1"
  s3_credentials_secret: Optional[str] = None

  def __post_init__(self):
    if self.trainer_gpus < 0:
      raise ValueError("TRAINER_GPUS must be >= 0")

  @classmethod
  def from_env(cls, env: Mapping[str, str] = os.environ) -> "KubeflowConfig":
    def get(name):
      return env.get(name, "").strip() or None
    gpus = get("TRAINER_GPUS")
    if gpus is not None and not gpus.isdigit():
      raise ValueError(f"TRAINER_GPUS={gpus!r} is not a valid int")
    allow = get("ALLOW_LOCAL_PATHS")
    try:
      allow_local_paths = boolean(allow) if allow else None
    except ValueError:
      raise ValueError(f"ALLOW_LOCAL_PATHS={allow!r} is not a valid "
                       "boolean") from None
    return cls(**_drop_none(
        image=get("IMAGE"), gpu_image=get("GPU_IMAGE"),
        pipeline_root=_local_or_uri(get("PIPELINE_ROOT"))
        if get("PIPELINE_ROOT") else None,
        trainer_gpus=int(gpus) if gpus else None,
        gpu_resource=get("GPU_RESOURCE"), kfp_host=get("KFP_HOST"),
        experiment=get("KFP_EXPERIMENT"),
        allow_local_paths=allow_local_paths,
        s3_endpoint_url=get("S3_ENDPOINT_URL"), s3_region=get("S3_REGION"),
        s3_credentials_secret=get("S3_CREDENTIALS_SECRET")))


def _local_or_uri(value: str) -> str:
  """Absolute local paths (`file://` ones too); gs://, s3://, minio:// URIs
  as given."""
  if storage.is_remote(value):
    return value
  return os.path.abspath(storage.local_path(value))


def _names(value: str) -> Tuple[str, ...]:
  return tuple(n.strip() for n in value.split(",") if n.strip())


def _shell_words(value: str) -> Tuple[str, ...]:
  return tuple(shlex.split(value))


def _drop_none(**kwargs):
  return {k: v for k, v in kwargs.items() if v is not None}


def boolean(value: str) -> bool:
  if value.lower() in ("1", "true", "yes", "on"):
    return True
  if value.lower() in ("0", "false", "no", "off"):
    return False
  raise ValueError(value)


def _fraction(value: str) -> float:
  """A number in [0, 1]: an accuracy or a drop of one (not NaN)."""
  number = float(value)
  if not gate_settings.is_fraction(number):
    raise ValueError(value)
  return number


_fraction.kind = "number between 0 and 1"


def _no_cache(value: str) -> Optional[bool]:
  """NO_CACHE=1 turns the cache off (over ENABLE_CACHE); NO_CACHE=0: unset."""
  return False if boolean(value) else None


_no_cache.kind = "boolean"  # what an error message calls it


# Every setting of `make run-local`: (environment variable, field of
# `PipelineConfig` ("group.field" for a component's settings), parser). A
# later row wins over an earlier one for the same field.
ENV_SETTINGS: Tuple[Tuple[str, str, Any], ...] = (
    ("DATASET", "dataset", str),
    # The ingestion (components/ingestion/settings.py).
    ("DATA_DIR", "ingestion.data_dir", _local_or_uri),
    ("TFDS_DATA_DIR", "ingestion.tfds_data_dir", _local_or_uri),
    ("DOWNLOAD_CACHE_DIR", "ingestion.download_cache_dir", str),
    ("TRAIN_FRACTION", "ingestion.train_fraction", float),
    ("MAX_EXAMPLES", "ingestion.max_examples", int),
    ("OUTPUT_DIR", "output_dir", _local_or_uri),
    ("SERVING_DIR", "serving_dir", _local_or_uri),
    ("LINEAGE", "lineage", str),
    ("RUNNER", "runner", str),
    ("SEED", "seed", int),
    ("STATS_SAMPLE_RATE", "stats_sample_rate", float),
    ("ENABLE_CACHE", "enable_cache", boolean),
    ("NO_CACHE", "enable_cache", _no_cache),
    ("RERUN_FROM", "rerun_from", str),
    ("BEAM_PIPELINE_ARGS", "beam_args", _shell_words),
    # The Trainer (components/trainer/hparams.py).
    ("MODEL", "trainer.model", str),
    ("OPTIMIZER", "trainer.optimizer", str),
    ("LEARNING_RATE", "trainer.learning_rate", float),
    ("EPOCHS", "trainer.epochs", int),
    ("BATCH_SIZE", "trainer.batch_size", int),
    ("EARLY_STOPPING_PATIENCE", "trainer.early_stopping_patience", int),
    ("REDUCE_LR_PATIENCE", "trainer.reduce_lr_patience", int),
    ("MIXED_PRECISION", "trainer.mixed_precision", boolean),
    ("TRAINER_GPUS", "trainer.gpus", int),
    # The gate (components/evaluator/settings.py).
    ("MIN_ACCURACY", "gate.min_accuracy", _fraction),
    ("MAX_ACCURACY_DROP", "gate.max_accuracy_drop", _fraction),
    ("MIN_CLASS_ACCURACY", "gate.min_class_accuracy", _fraction),
    ("MAX_CLASS_ACCURACY_DROP", "gate.max_class_accuracy_drop", _fraction),
    ("ALLOW_LOOSE_GATE", "gate.allow_loose_gate", boolean),
    # The Tuner (components/tuner/settings.py).
    ("TUNE", "tuner.enabled", boolean),
    ("TUNE_TRIALS", "tuner.trials", int),
    ("TUNE_EPOCHS", "tuner.epochs", int),
    ("TUNE_ALGORITHM", "tuner.algorithm", str),
    ("TUNE_FAMILIES", "tuner.families", _names),
    ("TUNE_FROM", "tuner.tune_from", _local_or_uri),
)
