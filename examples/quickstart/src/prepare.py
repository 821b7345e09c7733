"""Writes a synthetic regression data set (y = 3x - 2 plus noise) to data/train.csv."""
import argparse
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("--samples", type=int, default=1000)
args = parser.parse_args()

random.seed(int(os.environ.get("SEED", "7")))
os.makedirs("data", exist_ok=True)
with open("data/train.csv", "w") as f:
    for _ in range(args.samples):
        x = random.uniform(-1, 1)
        f.write(f"{x},{3 * x - 2 + random.gauss(0, 0.1)}\n")
print(f"wrote {args.samples} samples to data/train.csv")
