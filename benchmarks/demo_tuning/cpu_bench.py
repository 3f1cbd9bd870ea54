"""CPU timing on 2 threads: ResNet18 training, and ACGAN train steps for candidate configs."""
import json, sys, time, os
import torch
torch.set_num_threads(2)
from gen_eval.trainers.judge import ta_resnet18
from gen_eval.trainers.base import Batch
from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import OBJECTS
res = {}
def timeit(fn, warm=2, reps=4):
    for _ in range(warm): fn()
    t = time.perf_counter()
    for _ in range(reps): fn()
    return (time.perf_counter() - t) / reps
m = ta_resnet18(24); opt = torch.optim.Adam(m.parameters(), 1e-3)
for bs in (64, 128):
    x = torch.randn(bs, 3, 64, 64); y = (torch.rand(bs, 24) < .1).float()
    def step():
        p = m(x); l = torch.nn.functional.binary_cross_entropy(p, y); opt.zero_grad(); l.backward(); opt.step()
    res[f"resnet_train_bs{bs}_img_s"] = bs / timeit(step)
    print(res, flush=True)
m.eval()
with torch.no_grad():
    x = torch.randn(128, 3, 64, 64)
    res["resnet_eval_img_s"] = 128 / timeit(lambda: m(x), 1, 3)
judge_file = "/tmp/judge_rand.pth"
torch.save({"model": ta_resnet18(24).state_dict()}, judge_file)
space = LabelSpace.from_dict({"kind": "multilabel", "names": list(OBJECTS)})
configs = json.loads(open(sys.argv[1]).read())
from gen_eval.trainers.acgan import ACGAN
for name, spec in configs.items():
    spec = {k: v for k, v in spec.items() if k not in ("steps", "every")}
    bs = spec.pop("bs")
    if spec.get("perceptual_weight") or spec.get("judge_weight"):
        spec["judge"] = judge_file
    fam = ACGAN(ACGAN.resolve_config(spec), space); fam.config["image_channels"] = 3
    torch.manual_seed(0)
    nets = fam.build_networks(); opts = fam.build_optimizers(nets)
    batch = Batch(torch.rand(bs, 3, 64, 64) * 2 - 1, (torch.rand(bs, 24) < .08).float())
    dt = timeit(lambda: fam.train_step(nets, opts, batch, 0), 2, 4)
    res[f"acgan_{name}_step_s"] = dt
    print(name, round(dt, 3), "s/step", flush=True)
print(json.dumps(res, indent=1))
