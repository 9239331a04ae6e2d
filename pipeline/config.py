"""All pipeline settings in one typed place, read from the environment.

Every `make run-local VAR=...` setting is a field here (the Trainer's in
`hparams.TrainerConfig`); `PipelineConfig.from_env()` is the only code that
reads them. Only the console switches KERAS_PROGRESS and VERBOSE are read
where they print.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any, Dict, List, Mapping, Optional, Tuple

from components import storage
from components.ingestion import datasets
from components.ingestion import split
from components.trainer import hparams

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS_DIR = os.path.join(REPO_ROOT, "schemas")

# Minimum accuracy on `eval` for a model to be blessed, per dataset.
DEFAULT_MIN_ACCURACY = {"mnist": 0.90, "fashion_mnist": 0.80}
DEFAULT_MAX_ACCURACY_DROP = 0.002
# Allowed per-class drop below the model in service (as
# components.evaluator.eval_config's, which imports TFMA).
DEFAULT_MAX_CLASS_ACCURACY_DROP = {"mnist": 0.05, "fashion_mnist": 0.2}
CLASS_ACCURACY_MARGIN = 0.3  # default class floor: MIN_ACCURACY - 0.3
RUNNERS = ("beam", "local")
DEFAULT_TRAIN_FRACTION = split.DEFAULT_TRAIN_FRACTION


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Settings of one pipeline run (see README: "Configuration")."""
  dataset: str = "mnist"
  data_dir: Optional[str] = None
  tfds_data_dir: Optional[str] = None
  download_cache_dir: Optional[str] = os.path.join(
      os.path.expanduser("~"), ".cache", "mnist-tfx")
  output_dir: str = os.path.join(REPO_ROOT, "outputs")
  serving_dir: Optional[str] = None  # None: <output_dir>/serving
  lineage: str = ""  # a new value starts a fresh pipeline (no baseline)
  runner: str = "beam"
  seed: int = 42
  train_fraction: float = 0.7  # DEFAULT_TRAIN_FRACTION
  max_examples: Optional[int] = None
  trainer: hparams.TrainerConfig = hparams.TrainerConfig()
  min_accuracy: Optional[float] = None  # None: DEFAULT_MIN_ACCURACY[dataset]
  max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
  # Per class (sliced by label): the floor (None: MIN_ACCURACY - 0.3) and the
  # allowed drop below the model in service (None: per dataset, see below).
  min_class_accuracy: Optional[float] = None
  max_class_accuracy_drop: Optional[float] = None
  # A gate looser than the dataset's defaults pushes into a lineage of its
  # own (`-loose`) unless this is set (ALLOW_LOOSE_GATE=1).
  allow_loose_gate: bool = False
  stats_sample_rate: float = 1.0
  enable_cache: bool = True
  rerun_from: Optional[str] = None  # recompute this component and all after
  beam_args: Tuple[str, ...] = ()  # BEAM_PIPELINE_ARGS, split like a shell
  # TUNE=1: TFX's Tuner (KerasTuner) picks the Trainer's hyperparameters.
  tune: bool = False
  tune_trials: int = 10
  tune_epochs: int = 2  # per trial (Hyperband: at most)
  tune_algorithm: str = "random"  # random | hyperband | bayesian
  tune_families: Tuple[str, ...] = ("dense", "cnn")  # model families searched
  # An earlier Tuner's best_hyperparameters directory: train those, no search.
  tune_from: Optional[str] = None

  def __post_init__(self):
    datasets.get_dataset_info(self.dataset)  # validates the name
    if self.runner not in RUNNERS:
      raise ValueError(f"unknown runner {self.runner!r}; choose one of "
                       f"{list(RUNNERS)}")
    if not 0 < self.stats_sample_rate <= 1:
      raise ValueError("stats_sample_rate must be in (0, 1]")

  @property
  def pipeline_name(self) -> str:
    suffix = "".join(f"-{part}" for part in self.lineage_parts)
    return f"mnist-tfx-{self.dataset.replace('_', '-')}{suffix}"

  @property
  def lineage_parts(self) -> Tuple[str, ...]:
    """What separates this run's lineage (its baseline and serving model)
    from the default one, so that a run can only replace a model judged
    the same way: `LINEAGE`; a split definition other than the original
    7:3 (`split80` for TRAIN_FRACTION=0.8, see `split.lineage_part`);
    `quick` for MAX_EXAMPLES runs; `loose` for a gate looser than the
    dataset's defaults (`loose_gate_settings`) unless ALLOW_LOOSE_GATE=1."""
    parts = [self.lineage] if self.lineage else []
    split_part = split.lineage_part(self.train_fraction)
    if split_part:
      parts.append(split_part)
    if self.max_examples:
      parts.append("quick")
    if self.loose_gate_settings and not self.allow_loose_gate:
      parts.append("loose")
    return tuple(parts)

  @property
  def loose_gate_settings(self) -> Tuple[str, ...]:
    """The gate settings set looser than the dataset's defaults (a lower
    floor or a larger allowed drop)."""
    default_min = DEFAULT_MIN_ACCURACY[self.dataset]
    loose = []
    if self.accuracy_threshold < default_min:
      loose.append("MIN_ACCURACY")
    if self.max_accuracy_drop > DEFAULT_MAX_ACCURACY_DROP:
      loose.append("MAX_ACCURACY_DROP")
    if self.class_accuracy_threshold < _class_floor(default_min):
      loose.append("MIN_CLASS_ACCURACY")
    if self.class_drop_threshold > DEFAULT_MAX_CLASS_ACCURACY_DROP[
        self.dataset]:
      loose.append("MAX_CLASS_ACCURACY_DROP")
    return tuple(loose)

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
  def class_drop_threshold(self) -> float:
    """MAX_CLASS_ACCURACY_DROP, or the dataset's default: one class of a
    retrained model of equal quality moved by up to 0.022 on MNIST and
    0.12 on Fashion-MNIST (shirt vs. pullover) in our measurements."""
    if self.max_class_accuracy_drop is not None:
      return self.max_class_accuracy_drop
    return DEFAULT_MAX_CLASS_ACCURACY_DROP[self.dataset]

  @property
  def accuracy_threshold(self) -> float:
    if self.min_accuracy is not None:
      return self.min_accuracy
    return DEFAULT_MIN_ACCURACY[self.dataset]

  @property
  def class_accuracy_threshold(self) -> float:
    """MIN_CLASS_ACCURACY, or MIN_ACCURACY − 0.3."""
    if self.min_class_accuracy is not None:
      return self.min_class_accuracy
    return _class_floor(self.accuracy_threshold)

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
    values["trainer"] = dataclasses.asdict(self.trainer.resolved())
    return values

  @classmethod
  def from_env(cls, env: Mapping[str, str] = os.environ) -> "PipelineConfig":
    """Builds the config from environment variables (empty = default)."""
    def get(name, convert=str):
      value = env.get(name, "").strip()
      if not value:
        return None
      try:
        return convert(value)
      except ValueError:
        raise ValueError(f"{name}={value!r} is not a valid "
                         f"{convert.__name__}") from None

    trainer = hparams.TrainerConfig(**_drop_none(
        model=get("MODEL"), optimizer=get("OPTIMIZER"),
        learning_rate=get("LEARNING_RATE", float), epochs=get("EPOCHS", int),
        batch_size=get("BATCH_SIZE", int),
        early_stopping_patience=get("EARLY_STOPPING_PATIENCE", int),
        reduce_lr_patience=get("REDUCE_LR_PATIENCE", int),
        mixed_precision=get("MIXED_PRECISION", boolean), seed=get("SEED", int),
        gpus=get("TRAINER_GPUS", int)))
    return cls(**_drop_none(
        dataset=get("DATASET"), data_dir=get("DATA_DIR", _local_or_uri),
        tfds_data_dir=get("TFDS_DATA_DIR", _local_or_uri),
        download_cache_dir=get("DOWNLOAD_CACHE_DIR"),
        output_dir=get("OUTPUT_DIR", _local_or_uri),
        serving_dir=get("SERVING_DIR", _local_or_uri), lineage=get("LINEAGE"),
        runner=get("RUNNER"), seed=get("SEED", int),
        train_fraction=get("TRAIN_FRACTION", float),
        max_examples=get("MAX_EXAMPLES", int),
        min_accuracy=get("MIN_ACCURACY", float),
        max_accuracy_drop=get("MAX_ACCURACY_DROP", float),
        min_class_accuracy=get("MIN_CLASS_ACCURACY", float),
        max_class_accuracy_drop=get("MAX_CLASS_ACCURACY_DROP", float),
        allow_loose_gate=get("ALLOW_LOOSE_GATE", boolean),
        stats_sample_rate=get("STATS_SAMPLE_RATE", float),
        enable_cache=_enable_cache(get("ENABLE_CACHE", boolean),
                                   get("NO_CACHE", boolean)),
        rerun_from=get("RERUN_FROM"),
        beam_args=get("BEAM_PIPELINE_ARGS", _shell_words), tune=get("TUNE", boolean),
        tune_trials=get("TUNE_TRIALS", int),
        tune_epochs=get("TUNE_EPOCHS", int),
        tune_algorithm=get("TUNE_ALGORITHM"),
        tune_families=get("TUNE_FAMILIES", _names),
        tune_from=get("TUNE_FROM", _local_or_uri)), trainer=trainer)


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


def _enable_cache(enable: Optional[bool], no_cache: Optional[bool]
                  ) -> Optional[bool]:
  if no_cache:
    return False
  return enable


def _local_or_uri(value: str) -> str:
  """Absolute local paths (`file://` ones too); gs://, s3://, minio:// URIs
  as given."""
  if storage.is_remote(value):
    return value
  return os.path.abspath(storage.local_path(value))


def _class_floor(min_accuracy: float) -> float:
  return round(max(0.0, min_accuracy - CLASS_ACCURACY_MARGIN), 6)


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
