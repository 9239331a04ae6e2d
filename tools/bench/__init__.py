"""`make bench`: the pipeline's cost as ratios measured side by side.

Every verdict is a ratio of two things measured in this one run (absolute
times on shared machines drift), except the unchanged rerun (<= 5 s):

1. The whole DAG against the plain script a user would write instead:
   `python -m pipeline.local_runner` (what `make run-local` runs: dense_512
   on full MNIST, 5 epochs, an empty OUTPUT_DIR) against `pairs.KERAS3_SCRIPT`
   (the installed TensorFlow's `tf.keras`, i.e. Keras 3, no project code:
   read the IDX files, scale, fit on the 60,000 training images with the
   same optimizer, epochs and batch size, evaluate, save), each a process
   of its own, in interleaved pairs (DAG, script) x `PAIRS`. Target: the
   median of the pairs' ratios <= 1.5x; each figure is printed as median
   and range. For the record (no target) `TF_KERAS_SCRIPT`, the same script
   on Keras 2 (`tf_keras`, the pipeline's Keras), once.
2. Reruns: the same command three more times. After its own push (its
   model is the one in service: nothing to decide, reported); after another
   run pushed a version (the bench copies the model in as a new version), so
   it compares the candidate with the new model in service again (its wall
   against its Evaluator's own seconds, reported: a cold process's imports
   are its floor); then unchanged: <= 5 s wall.
3. Scaling: the official training images repeated 1, 2, 4, 8 times (each
   copy after the first shifted by one pixel, so every image is distinct),
   written as IDX files by the bench; ingestion, statistics (our
   StatisticsGen executor, every split) and evaluation (our Evaluator
   executor, TFMA on the eval split, the DAG's model, no baseline) each in a
   process of its own, timed inside it (imports excluded) and its peak RSS
   taken from the kernel. Targets: time per example at 8x <= 1.25x that at
   1x, peak RSS at 8x <= 2x that at 1x, per stage.
4. CNN epochs: the `cnn` preset's epoch seconds inside the DAG's Trainer
   (3 epochs; the median after the first, which traces) against the same
   CNN in `gpu.PLAIN_CNN_SCRIPT` (plain Keras on numpy arrays), the same device
   one after the other. Target on a GPU: <= 1.1x. On a CPU, 6,000 images
   and no target (not in --quick).
5. Trainer input vs plain Keras (`fit` on the pipeline's tf.data input
   against `fit` on numpy arrays, alternating, median of pairs): >= 0.9x.
6. Floors (no target; not in --quick): each component against its
   library's own compute on the same examples and model, in process:
   TFDV's generators on every split's record batches (StatisticsGen), TF
   inference of the candidate over the eval split plus the gate's metrics
   on its predictions (the Evaluator); and the ratio a DAG could not beat
   while doing those checks: (script + both floors) / script.

One module per figure: `pairs` (1 and 2), `scaling` (3, with `stages`, a
component's work in a process of its own), `gpu` (4), `trainer_input` (5),
`floors` (6); `verdicts` (targets and the table), `common` (running a
measured process, median and range), `main` (the command).

Prints one table (figure, value, target, verdict), writes `bench.json`,
`bench.png` (the scaling curve: seconds and peak memory against data size)
and `dag.png` (a run's timeline: its components, side by side where they
overlapped, against the whole process and the script) to $BENCH_OUTPUT_DIR
(default outputs/bench). Data: $BENCH_DATA_DIR or ../shared/datasets/mnist.
`--quick` (or BENCH_QUICK=1, a smoke run of about 3 minutes): the DAG and
the script on 6,000 training images for 1 epoch, one pair, scaling from
1/32 of the training set, no trainer-input pairs: its ratios are not the
goals' figures. `--profile STAGE` runs one scaling stage at 1x under
cProfile and prints the top functions.
"""
