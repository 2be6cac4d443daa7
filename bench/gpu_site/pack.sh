#!/usr/bin/env bash
# Pack, on a machine with registry access, one xz tarball (default .gpu-site.tar.xz) holding a
# site-packages folder for CPython 3.12 on x86-64 Linux with what archsweep needs on a GPU machine
# that cannot reach a package registry: Ray Tune (slimmed by slim_ray_wheel.py), Optuna, Thinc,
# confection, typer, MLflow (skinny, with what its SQLite store and server need), plus any extra
# requirements given after the file name. Packages a typical CUDA image already has (torch, CuPy,
# numpy, pandas, transformers, ...: ON_IMAGE below) are left out so that nothing shadows them; edit
# that list for your image. About 45 MB packed. On the GPU machine, in the checkout:
#   mkdir -p .gpu-site && tar xJf .gpu-site.tar.xz -C .gpu-site
#   export PYTHONPATH=$PWD/.gpu-site/site:$PWD
#   python bench/gpu.py
# Usage: bench/gpu_site/pack.sh [OUT.tar.xz] [extra requirements...]   (needs python3 -m pip, strip, xz)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-.gpu-site.tar.xz}"); shift || true
python=${PYTHON:-python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
plat=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do plat+=(--platform "$p"); done
target=(--python-version 3.12 --implementation cp "${plat[@]}" --only-binary=:all:)
"$python" -m pip download -q "${target[@]}" -d "$tmp/whl" \
  "ray[tune]==2.60.0" "optuna==5.0.0" "thinc==8.3.14" "confection>=1.3.4" "mlflow-skinny==3.17.2" \
  "typer>=0.12" flask flask-cors graphene "$@" 2>&1 | grep -v "^WARNING" || true
# On the GPU image already (its `pip list`); left out so nothing shadows them.
ON_IMAGE=${ON_IMAGE:-"absl_py aiofiles aiohappyeyeballs aiohttp aiosignal annotated_doc anyio attrs certifi charset_normalizer click
cloudpickle colorama contourpy coverage cupy_cuda12x cupy_cuda13x cycler filelock fonttools frozenlist fsspec grpcio h11 h5py httpcore
httpx huggingface_hub idna iniconfig jinja2 joblib kiwisolver lxml markdown markdown_it_py markupsafe matplotlib mdurl mpmath
msgpack multidict networkx numpy packaging pandas pillow pip pluggy prometheus_client propcache protobuf psutil pyarrow
pygments pyparsing pytest python_dateutil pyyaml regex requests rich safetensors scikit_learn scipy setuptools six
sortedcontainers sympy tabulate threadpoolctl tokenizers toolz torch tqdm transformers typer urllib3 werkzeug wheel wrapt
xxhash yarl zipp shellingham"}
for f in "$tmp"/whl/*.whl; do
  dist=$(basename "$f"); dist=$(echo "${dist%%-*}" | tr 'A-Z.-' 'a-z__')
  for name in $ON_IMAGE; do [ "$dist" = "$name" ] && rm -f "$f"; done
done
for f in "$tmp"/whl/ray-*.whl; do "$python" "$here/slim_ray_wheel.py" "$f" "$tmp/slim" >/dev/null; mv "$tmp"/slim/*.whl "$f"; done
"$python" -m pip install -q --no-deps --no-compile "${target[@]}" --target "$tmp/site" "$tmp"/whl/*.whl 2>&1 | grep -v "^WARNING" || true
tar -C "$tmp" -cf - site | xz -9 -T0 > "$out"
echo "$(ls "$tmp"/whl | wc -l) packages, $(du -sm "$tmp/site" | cut -f1) MB unpacked, $(du -m "$out" | cut -f1) MB packed: $out"
