"""StatisticsGen: TFDV statistics of every split, in process unless Beam is
asked to run them elsewhere (a distributed runner)."""
