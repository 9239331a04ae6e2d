"""The MNIST / Fashion-MNIST TFX pipeline, as an installable project.

Dependencies are pinned in requirements.lock (installed by `make install`);
the ranges below only document what the code needs.
"""
from setuptools import find_packages, setup

setup(
    name="mnist-tfx-pipeline",
    version="0.1.0",
    description="TFX pipeline that trains, evaluates and pushes Keras "
                "models for MNIST and Fashion-MNIST.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components",
                                    "components.*", "serving", "serving.*"]),
    py_modules=["mnist_tfx"],
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        "tensorflow-model-analysis==0.47.1",
        "tensorflow-data-validation==1.16.1",
        "apache-beam[gcp]==2.59.0",
        "tensorflow-datasets",
        "dill",
        "matplotlib",
        "tensorboard",  # the HParams sessions; `make tensorboard`
        "pillow",
    ],
    entry_points={"console_scripts": [
        "mnist-tfx=mnist_tfx:main",
    ]},
)
