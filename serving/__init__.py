"""The serving directory: where pushed models live, and how to use them.

Layout of `<SERVING_DIR>/<dataset>/` (a local path, gs:// or s3://):

    <version>/            a pushed SavedModel; integer Unix-time names, the
                          highest complete one (with saved_model.pb) in service
      push_record.json    its record: eval accuracy, source model, run, the
                          version it was compared with (written before it
                          appears)
    registry.json         an index of the records, rebuilt after each push
    .staging-<version>/   a local push under way (renamed into place)
    .push-claims/         object stores: `after-<version>`, the claim of the
                          push succeeding that version (conditional create)
    .push.lock            the local push lock

`versions` pushes and lists versions (and holds the lock and the claims;
`claims`: the stores' conditional writes),
`registry` reads their records and writes the index, `baseline` finds the
model in service and the best one ever pushed, `predict` loads a version
and classifies images. The
Pusher, `LatestPushedModel`, the test-split evaluation and `mnist-tfx
predict` all go through this package.
"""
