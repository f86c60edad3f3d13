"""Comparison identical to conformance/run.py (second precision, same-second groups unordered)."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../conformance"))
from run import normalize, groups  # noqa: E402


def same(expected, actual):
    return groups([normalize(x) for x in expected]) == groups([normalize(x) for x in actual])
