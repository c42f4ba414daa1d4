#!/usr/bin/env bash
echo "tests/fuzz/run.sh: not implemented yet"
