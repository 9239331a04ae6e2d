"""The MNIST / Fashion-MNIST TFX pipeline, as an installable project.

`install_requires` states requirements.in's lines (what the code needs at
run time); requirements.lock pins them and everything below them, and is
what `make install` and the image install. `tests/test_packaging.py` keeps
the two lists equal. Test and bench tools are in requirements-dev.in.
"""
from setuptools import find_packages, setup

setup(
    name="mnist-tfx-pipeline",
    version="0.1.0",
    description="TFX pipeline that trains, evaluates and pushes Keras "
                "models for MNIST and Fashion-MNIST.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components",
                                    "components.*", "serving", "serving.*",
                                    "schemas"]),
    # The curated schemas (schemas/<dataset>/schema.pbtxt), found from the
    # installed package (pipeline.config.SCHEMAS_DIR).
    package_data={"schemas": ["*/schema.pbtxt"]},
    py_modules=["mnist_tfx"],
    install_requires=[
        "tfx[kfp]==1.16.0",
        "keras-tuner==1.3.5",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        "tensorflow-model-analysis==0.47.1",
        "tensorflow-data-validation==1.16.1",
        "tensorflow-transform==1.16.0",
        "tfx-bsl==1.16.1",
        "ml-metadata==1.16.0",
        "tensorflow-datasets",
        "kfp==2.5.0",
        "kfp-pipeline-spec==0.2.2",
        "protobuf==3.20.3",
        "numpy<2",
        "dill",
        "apache-beam[gcp,aws]==2.59.0",
        "tensorflow-io==0.37.1",  # s3:// for tf.io.gfile
        "tensorboard",  # the HParams sessions; `make tensorboard`
        "setuptools<81",  # TensorBoard 2.16 imports pkg_resources
        "matplotlib",
        "pillow",
        "boto3",  # serving/claims.py: S3 conditional writes (push claims)
        "google-cloud-storage",  # and GCS's
    ],
    entry_points={"console_scripts": [
        "mnist-tfx=mnist_tfx:main",
    ]},
)
