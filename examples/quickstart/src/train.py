"""Fits y = w*x + b by gradient descent on data/train.csv and saves checkpoint/model.txt."""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--lr", type=float, default=0.5)
args = parser.parse_args()

rows = [tuple(map(float, line.split(","))) for line in open("data/train.csv")]
w, b = 0.0, 0.0
for epoch in range(1, args.epochs + 1):
    gw = sum((w * x + b - y) * x for x, y in rows) * 2 / len(rows)
    gb = sum((w * x + b - y) for x, y in rows) * 2 / len(rows)
    w, b = w - args.lr * gw, b - args.lr * gb
    loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
    width = 30
    done = width * epoch // args.epochs
    sys.stdout.write(f"\rEpoch {epoch}/{args.epochs} [{'#' * done}{'.' * (width - done)}] loss={loss:.4f}")
    sys.stdout.flush()
print()
os.makedirs("checkpoint", exist_ok=True)
with open("checkpoint/model.txt", "w") as f:
    f.write(f"w={w:.4f} b={b:.4f}\n")
print(f"saved checkpoint/model.txt: w={w:.3f} b={b:.3f}")
