#!/bin/bash
# One device call: CPU timing pinned to cores 0-1 while GPU sweeps run on cores 2-15.
set -u
export PYTHONPATH=$PWD
T=benchmarks/demo_tuning; ROOT=$PWD
W=/tmp/w; mkdir -p $W
python3 -c "import torch, torchvision, onnxruntime, matplotlib, click, tqdm, scipy, PIL, onnx; print('versions', torch.__version__, torchvision.__version__, onnxruntime.__version__)" 2>&1
nproc; lscpu | grep "Model name"
for k in 2000 4000; do taskset -c 2-15 python3 -c "
from gen_eval.data.shapes import write_shapes
write_shapes('$W/shapes$k', n_train=$k, n_heldout=500, force=True)
" & done; wait; echo data-ok
# the judge used for the ACGAN sweep: a plausible CPU recipe (2000 images, 5 epochs)
taskset -c 2-15 python3 $T/sweep.py classifier J0 $W/shapes2000 $W/cls_J0 '{"epochs":5,"bs":32}'
cp $W/cls_J0/eval.csv $OUT/cls_J0_eval.csv
declare -A CLS=( [C1]='2000 {"epochs":8,"bs":64}' [C2]='4000 {"epochs":4,"bs":64}' [C3]='2000 {"epochs":8,"bs":32}' [C4]='2000 {"epochs":8,"bs":64,"lr":2e-3}' )
for k in "${!CLS[@]}"; do set -- ${CLS[$k]}; timeout 150 taskset -c 2-15 python3 $T/sweep.py classifier $k $W/shapes$1 $W/cls_$k "$2" > $W/log_$k.txt 2>&1 & done
timeout 130 python3 - <<PY
import json, subprocess
cfg = json.load(open("$T/acgan_configs.json"))
procs = []
for name, spec in cfg.items():
    procs.append(subprocess.Popen(["taskset", "-c", "2-15", "python3", "$T/sweep.py", "acgan", name, "$W/shapes2000", f"$W/acgan_{name}",
                                   json.dumps({**spec, "judge": "$W/cls_J0/classifier_ta.pth"})],
                                  stdout=open(f"$W/log_{name}.txt", "w"), stderr=subprocess.STDOUT))
for p in procs: p.wait()
PY
wait
for k in C1 C2 C3 C4; do cp $W/cls_$k/eval.csv $OUT/cls_${k}_eval.csv 2>/dev/null; tail -2 $W/log_$k.txt; done
for f in $W/log_*.txt; do echo "== $f"; tail -3 $f; done
(cd $T && timeout 45 taskset -c 2-15 python3 score_all.py $W $W/cls_J0/classifier_ta.pth $W/shapes2000 $OUT/acgan_scores.json)
mkdir -p $OUT/grids; for d in $W/acgan_*; do cp $d/samples/last.png $OUT/grids/$(basename $d).png 2>/dev/null; cp $d/log.csv $OUT/grids/$(basename $d).csv; done
cat $OUT/cls_*_eval.csv
