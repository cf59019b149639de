# Sourced by test.sh and demo.sh: compile through ccache when it is installed (scripts/setup.sh
# installs it). CMake reads the launchers from the environment, so every build of a run, the
# Python wheel's included, shares one cache. The cache stays in ccache's own home (~/.cache/ccache),
# not under build/: CI runs each submission in a fresh clone, whose build/ starts empty.
# CCACHE_BASEDIR and CCACHE_NOHASHDIR make hits independent of the checkout's path, so a clone in
# another folder reuses the objects of the last one (debug info then names the earlier path).
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_CUDA_COMPILER_LAUNCHER=ccache
fi
