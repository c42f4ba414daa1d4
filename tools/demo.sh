#!/usr/bin/env bash
echo "tools/demo.sh: not implemented yet"
