"""Usage: sweep.py classifier NAME DATA OUT json_overrides  |  sweep.py acgan NAME DATA OUT json  | score"""
import json, sys, time, os
from pathlib import Path
import torch
torch.set_num_threads(1)
kind, name, data, out, spec = sys.argv[1:6]
spec = json.loads(spec)
t0 = time.time()
from gen_eval.trainers.loop import train
if kind == "classifier":
    last = train("classifier", data, out, epochs=spec.pop("epochs"), batch_size=spec.pop("bs"), device=os.environ.get("DEV","cuda"), seed=0,
                 config_overrides=spec, progress=False, force=True, echo=lambda m: None)
else:
    steps = spec.pop("steps"); bs = spec.pop("bs"); every = spec.pop("every")
    last = train("acgan", data, out, steps=steps, batch_size=bs, device=os.environ.get("DEV","cuda"), seed=0, config_overrides=spec,
                 progress=False, force=True, checkpoint_every=every, keep_checkpoints=True, echo=lambda m: None)
print(name, "done", round(time.time() - t0, 1), "s", flush=True)
