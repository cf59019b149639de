#pragma once
/// @file embedkit.hpp
/// @brief The whole C++ API in one include.

#include <embedkit/buffer.hpp>
#include <embedkit/checkpoint.hpp>
#include <embedkit/collection.hpp>
#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/cuda_stream.hpp>
#include <embedkit/initializer.hpp>
#include <embedkit/logging.hpp>
#include <embedkit/placement.hpp>
#include <embedkit/plan.hpp>
#include <embedkit/pooling.hpp>
#include <embedkit/pretrained.hpp>
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>
#include <embedkit/version.hpp>
