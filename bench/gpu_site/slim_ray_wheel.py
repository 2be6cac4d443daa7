#!/usr/bin/env python3
"""Rewrite a Ray wheel into a slim one that still runs Ray Tune, so it fits a size-limited transfer.

Drops the Java worker jar, RLlib, Serve, the LLM library and the dashboard's web client, strips
symbols from the native binaries, and rewrites RECORD to match. Usage: slim_ray_wheel.py IN.whl OUT_DIR (bench/gpu_site/pack.sh runs it)
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

DROP = ("ray/jars/", "ray/rllib/", "ray/serve/", "ray/llm/", "ray/dashboard/client/")
BINARIES = ("ray/_raylet.so", "ray/core/src/ray/gcs/gcs_server", "ray/core/src/ray/raylet/raylet")


def record_line(root: str, rel: str) -> str:
    data = open(os.path.join(root, rel), "rb").read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}\n"


def main(src: str, out_dir: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(src) as whl:
            whl.extractall(tmp)
            for info in whl.infolist():  # extractall drops permission bits; the binaries need theirs
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    os.chmod(os.path.join(tmp, info.filename), mode & 0o7777)
        for prefix in DROP:
            shutil.rmtree(os.path.join(tmp, prefix), ignore_errors=True)
        for rel in BINARIES:
            path = os.path.join(tmp, rel)
            if os.path.exists(path):
                subprocess.run(["strip", "--strip-unneeded", path], check=True)
        record = next(os.path.join(tmp, d, "RECORD") for d in os.listdir(tmp) if d.endswith(".dist-info"))
        rel_record = os.path.relpath(record, tmp)
        lines = []
        for dirpath, _, files in os.walk(tmp):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), tmp)
                if rel != rel_record:
                    lines.append(record_line(tmp, rel))
        lines.append(f"{rel_record},,\n")
        open(record, "w").writelines(sorted(lines))
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, os.path.basename(src))
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as whl:
            for dirpath, _, files in os.walk(tmp):
                for name in files:
                    full = os.path.join(dirpath, name)
                    whl.write(full, os.path.relpath(full, tmp))
    print(f"{out}: {os.path.getsize(src) / 1e6:.1f} MB -> {os.path.getsize(out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
