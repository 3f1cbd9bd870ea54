"""The public jobs behind ``gen_eval.score``, ``gen_eval.fid`` and the rest: one module per job."""
