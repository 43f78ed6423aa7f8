#!/bin/sh
# Brings one node of pool.gpu to $PLINTH_PATCH_LEVEL (docs/compute.md,
# "Patching nodes"). Here it only says what it would do; put what your nodes
# need instead: a driver, a container image, a conda environment. Its output
# goes to .plinth/<workspace>/compute/patches/<node>.log; a non-zero exit, or
# running past the pool's patch.timeout, fails the node.
# With --rollback (the pool's rollback_command) it takes the node back from a
# halted level ($PLINTH_PREVIOUS_PATCH_LEVEL) to the one it had ($PLINTH_PATCH_LEVEL).
set -eu
what=patch
[ "${1:-}" = "--rollback" ] && what=rollback
echo "node $PLINTH_NODE (GPUs ${PLINTH_NODE_GPUS:-none}): $what, level ${PLINTH_PREVIOUS_PATCH_LEVEL:-none} -> ${PLINTH_PATCH_LEVEL:-none}"
