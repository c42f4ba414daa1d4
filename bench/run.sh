#!/usr/bin/env bash
echo "bench/run.sh: not implemented yet"
