"""Scratch helpers for tuning the demo recipe (not part of the package; deleted after tuning)."""
import os
import numpy as np
import torch

DEV = os.environ.get("DEV", "cuda")
_cache = {}

def _judge(path):
    from gen_eval.trainers.judge import load_judge
    if path not in _cache:
        _cache[path] = load_judge(path)[0].eval().to(DEV)
    return _cache[path]

def score_checkpoint(ckpt_path, judge_path, cond_files, seeds=(0, 1, 2, 3, 4)):
    from gen_eval.trainers.checkpoint import load_checkpoint
    from gen_eval.trainers.generators import build_generator
    from gen_eval.data.labels import LabelSpace
    from gen_eval.data.conditions import read_condition_file
    from gen_eval.evaluator.score import multilabel_score
    ck = load_checkpoint(ckpt_path)
    space = LabelSpace.from_dict(ck["label_space"])
    c = ck["config"]
    g = build_generator(c["generator"], latent_dim=c["latent_dim"], label_dim=space.size, image_shape=(3, c["image_size"], c["image_size"]),
                        width=c["ngf"], cond_embed=c["cond_embed"], start_size=c["g_start_size"], res_blocks=c["g_res_blocks"])
    g.load_state_dict(ck["networks"]["generator"]); g.eval().to(DEV)
    judge = _judge(judge_path)
    out = {}
    for name, f in cond_files.items():
        conds = torch.from_numpy(read_condition_file(f, space)).to(DEV)
        vals = []
        for s in seeds:
            z = torch.randn(len(conds), c["latent_dim"], generator=torch.Generator().manual_seed(1000 + s)).to(DEV)
            with torch.no_grad():
                img = g(z, conds)
                if img.shape[-1] != 64:
                    img = torch.nn.functional.interpolate(img, size=(64, 64), mode="bilinear", align_corners=False)
                probs = judge(img).float().cpu().numpy()
            vals.append(multilabel_score(probs, conds.cpu().numpy()).value)
        out[name] = round(float(np.mean(vals)), 4), round(float(np.min(vals)), 4)
    return out
