// Issue #22 regression tests: see docs/reliability.md, "Round two".
#include <gtest/gtest.h>
