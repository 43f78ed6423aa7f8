#!/bin/sh
# Brings one node of pool.gpu to $PLINTH_PATCH_LEVEL (docs/compute.md,
# "Patching nodes"). Here it only says what it would do; put what your nodes
# need instead: a driver, a container image, a conda environment. Its output
# goes to .plinth/<workspace>/compute/patches/<node>.log; a non-zero exit, or
# running past the pool's patch.timeout, fails the node.
set -eu
echo "node $PLINTH_NODE (GPUs ${PLINTH_NODE_GPUS:-none}): level ${PLINTH_PREVIOUS_PATCH_LEVEL:-none} -> $PLINTH_PATCH_LEVEL"
