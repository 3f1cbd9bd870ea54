import json, sys, glob, os
from pathlib import Path
from common import score_checkpoint
root, judge, data = sys.argv[1:4]
res = {}
for run in sorted(p for p in Path(root).glob("acgan_*") if p.is_dir()):
    curve = {}
    for ck in sorted((run / "checkpoints").glob("step_*.pt")):
        step = int(ck.stem.split("_")[1])
        if step not in (50, 100, 150, 200, 300, 400, 500, 600, 800, 1000):
            continue
        try:
            curve[step] = score_checkpoint(ck, judge, {"test": f"{data}/test.json", "new": f"{data}/new_test.json"})
        except Exception as e:
            curve[step] = repr(e)[:200]
    res[run.name] = curve
    print(run.name, json.dumps(curve), flush=True)
    json.dump(res, open(sys.argv[4], "w"), indent=1)
json.dump(res, open(sys.argv[4], "w"), indent=1)
