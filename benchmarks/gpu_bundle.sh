#!/usr/bin/env bash
# Pack what benchmarks/gpu.py needs on a GPU machine that has Python 3.12 and a CUDA torch but
# nothing else of lakedet's stack and no network (docs/gpu.md): the pinned versions of
# constraints.txt as Python 3.12 wheels, unpacked into one folder, with botocore's service models
# cut to the S3 ones moto's server uses, as .devbundle/site.tar.xz (about 50 MB; the machine
# takes 64 MiB in all). Run here, where pip reaches the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pin() { grep -i "^$1==" constraints.txt; }
wheels=$(mktemp -d) site=$(mktemp -d)
names="deeplake deepframe mmdet mmengine pycocotools simplejpeg shapely terminaltables addict yapf termcolor
       platformdirs moto boto3 botocore s3transfer jmespath xmltodict responses cryptography cffi pycparser
       flask flask-cors itsdangerous blinker"
platform="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
$PY -m pip download -q --no-deps $platform -d "$wheels" $(for n in $names; do pin "$n"; done) "mmcv-lite==$(pin mmcv | cut -d= -f3)"
$PY -m pip install -q --no-deps --no-compile $platform --target "$site" "$wheels"/*.whl
for d in "$site"/botocore/data/*/; do case $(basename "$d") in s3|sts|iam|s3control) ;; *) rm -rf "$d" ;; esac; done
rm -rf "$site/bin"
mkdir -p .devbundle
tar cf - -C "$site" . | xz -6 -T0 > .devbundle/site.tar.xz
rm -rf "$wheels" "$site"
ls -l .devbundle/site.tar.xz
