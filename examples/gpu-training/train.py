#!/usr/bin/env python3
"""The example's training program: a stand-in for a real trainer.

`train.py prepare` writes a small dataset into the bucket the job writes
($PLINTH_BUCKET_DATASETS); `train.py train --epochs N` reads it, "trains" on
the GPUs in CUDA_VISIBLE_DEVICES and writes one checkpoint per epoch into
$PLINTH_BUCKET_CHECKPOINTS. Plinth gives the job those paths because the job
declares the buckets in `reads`/`writes` and the buckets grant its principal.
"""
import hashlib
import json
import os
import sys


def bucket(name):
    path = os.environ.get("PLINTH_BUCKET_" + name)
    if not path:
        sys.exit(f"no bucket {name.lower()} in this job's environment (PLINTH_BUCKET_{name})")
    return path


def prepare():
    out = os.path.join(bucket("DATASETS"), "train")
    os.makedirs(out, exist_ok=True)
    for i in range(8):
        with open(os.path.join(out, f"shard-{i:02d}.txt"), "w") as f:
            f.write("".join(f"sample {i}-{j}\n" for j in range(100)))
    print(f"prepared 8 shards in {out}")


def train(epochs):
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    print(f"training on GPUs [{gpus}]")
    data = os.path.join(bucket("DATASETS"), "train")
    shards = sorted(os.listdir(data))
    if not shards:
        sys.exit(f"no shards in {data}: run the prepare job first")
    digest = hashlib.sha256()
    for s in shards:
        with open(os.path.join(data, s), "rb") as f:
            digest.update(f.read())
    ckpts = bucket("CHECKPOINTS")
    loss = 2.0
    for epoch in range(1, epochs + 1):
        loss *= 0.6
        with open(os.path.join(ckpts, f"ckpt-epoch-{epoch}.json"), "w") as f:
            json.dump({"epoch": epoch, "loss": round(loss, 4), "data": digest.hexdigest()[:16], "gpus": gpus}, f)
        print(f"epoch {epoch}: loss {loss:.4f}")
    print(f"wrote {epochs} checkpoints to {ckpts}")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "prepare":
        prepare()
    elif len(sys.argv) >= 2 and sys.argv[1] == "train":
        epochs = int(sys.argv[3]) if len(sys.argv) >= 4 and sys.argv[2] == "--epochs" else 1
        train(epochs)
    else:
        sys.exit("usage: train.py prepare | train --epochs N")
