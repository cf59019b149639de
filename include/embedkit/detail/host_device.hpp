#pragma once
// C++17: included by .cu files. EK_HOST_DEVICE marks functions compiled for both the host and the
// device under nvcc, and expands to nothing for a host compiler, so one header serves both.

#if defined(__CUDACC__)
#define EK_HOST_DEVICE __host__ __device__
#else
#define EK_HOST_DEVICE
#endif

// EK_UNROLL asks nvcc's device pass to unroll the loop that follows, so a small per-thread array
// it indexes stays in registers; host passes get nothing (an unknown pragma would warn).
#if defined(__CUDA_ARCH__)
#define EK_UNROLL _Pragma("unroll")
#else
#define EK_UNROLL
#endif
