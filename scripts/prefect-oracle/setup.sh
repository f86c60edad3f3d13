#!/bin/sh
# Creates ./venv with Prefect 3.9.1's server (the oracle). Needs network access to PyPI.
# 3.9.1 pins a certifi release some mirrors lack, so 3.8.8 brings the dependencies and 3.9.1 is laid over it.
set -eu
cd "$(dirname "$0")"
python3 -m venv venv
./venv/bin/pip install -q "prefect==3.8.8"
./venv/bin/pip install -q --no-deps "prefect==3.9.1"
./venv/bin/pip install -q "whenever<0.12" "fastapi<0.151"
./venv/bin/python -c "import prefect; print('prefect', prefect.__version__)"
