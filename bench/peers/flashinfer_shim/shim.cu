// FlashInfer's own top-k and sampling kernels behind a C ABI, for bench/peers/flashinfer_shim.py on a
// GPU host where the flashinfer-python wheel (100+ MB with its dependencies) cannot be carried.
//
// Each function does what FlashInfer's binding in csrc/ does after its argument checks: the same
// template, the same template arguments, the same call. The checks themselves, the tensor allocation
// and the steps FlashInfer takes in Python (softmax before the sampler, the sort after the radix
// select, the RNG seed and offset) are flashinfer_shim.py's. Compiled by ./build with FlashInfer's JIT
// flags against the headers of the pinned wheel (FLASHINFER_VERSION below comes from there).
//
// Every function returns a cudaError_t as int (0: success), or -1 where FlashInfer's host code threw (its
// DISPATCH_* macros throw on a case they lack); fi_shim_error_string names either.
#include <cuda_runtime.h>

#include <cstdint>
#include <exception>
#include <string>
#include <flashinfer/sampling.cuh>  // includes topk.cuh, as csrc/topk.cu does both
#include <flashinfer/topk.cuh>

#ifndef FLASHINFER_VERSION
#error "build with -DFLASHINFER_VERSION=\"x.y.z\" (./build does)"
#endif

using namespace flashinfer;

namespace {

thread_local std::string last_exception;

// Runs a launch path; a C++ exception must not cross into ctypes (it would abort the process).
template <typename F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    last_exception = e.what();
  } catch (...) {
    last_exception = "unknown C++ exception";
  }
  return -1;
}

// bench/peers/flashinfer_shim.py's dtype codes.
enum ShimDtype : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

template <typename T>
int radix_topk(void* input, int32_t* indices, void* values, sampling::RadixRowState* row_states,
               uint32_t rows, uint32_t k, uint32_t d, bool sorted_output, bool deterministic,
               sampling::TopKTieBreak tie_break, cudaStream_t stream, bool dsa_graph_safe) {
  // csrc/topk.cu radix_topk(): sampling::TopKDispatch<c_type, int32_t>(...)
  return static_cast<int>(sampling::TopKDispatch<T, int32_t>(
      static_cast<T*>(input), indices, static_cast<T*>(values), rows, k, d, row_states,
      sorted_output, deterministic, tie_break, stream, dsa_graph_safe));
}

}  // namespace

#define FI_API __attribute__((visibility("default")))

extern "C" {

FI_API const char* fi_shim_flashinfer_version() { return FLASHINFER_VERSION; }

FI_API const char* fi_shim_error_string(int status) {
  if (status == -1) return last_exception.c_str();
  return cudaGetErrorString(static_cast<cudaError_t>(status));
}

// The arch the kernels were compiled for (__CUDA_ARCH__ of the device pass, e.g. 900), so the caller
// can refuse another GPU up front instead of failing at the first launch.
FI_API int fi_shim_cuda_arch() { return FI_SHIM_CUDA_ARCH; }

// csrc/topk.cu can_implement_filtered_topk(): 1 or 0; below 0 on errors.
FI_API int fi_can_implement_filtered_topk(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return -static_cast<int>(e);
  return guarded([]() -> int { return sampling::CanImplementFilteredTopK() ? 1 : 0; });
}

// csrc/topk.cu radix_topk(): input (rows x d, contiguous, dtype), indices (rows x k int32), values
// (rows x k, dtype; may be null), row_states: FlashInfer's 1 MiB RadixRowState scratch, zeroed before
// its first use (may be null: single-CTA regime only). tie_break: 0 none, 1 small, 2 large.
FI_API int fi_radix_topk(int device, void* stream, void* input, int dtype, void* indices, void* values,
                         void* row_states, uint32_t rows, uint32_t d, uint32_t k, int sorted_output,
                         int deterministic, int tie_break, int dsa_graph_safe) {
  sampling::TopKTieBreak mode;
  switch (tie_break) {  // csrc/topk.cu ParseTopKTieBreak
    case 0: mode = sampling::TopKTieBreak::None; break;
    case 1: mode = sampling::TopKTieBreak::Small; break;
    case 2: mode = sampling::TopKTieBreak::Large; break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  cudaError_t e = cudaSetDevice(device);  // as csrc/topk.cu does
  if (e != cudaSuccess) return static_cast<int>(e);
  auto* rs = static_cast<sampling::RadixRowState*>(row_states);
  auto* idx = static_cast<int32_t*>(indices);
  auto s = static_cast<cudaStream_t>(stream);
  return guarded([&]() -> int {
    switch (dtype) {  // DISPATCH_DLPACK_DTYPE_TO_CTYPE_FP32_FP16: float, nv_half, nv_bfloat16
      case kF32:
        return radix_topk<float>(input, idx, values, rs, rows, k, d, sorted_output, deterministic, mode, s,
                                 dsa_graph_safe);
      case kF16:
        return radix_topk<nv_half>(input, idx, values, rs, rows, k, d, sorted_output, deterministic, mode,
                                   s, dsa_graph_safe);
      case kBF16:
        return radix_topk<nv_bfloat16>(input, idx, values, rs, rows, k, d, sorted_output, deterministic,
                                       mode, s, dsa_graph_safe);
      default:
        return static_cast<int>(cudaErrorInvalidValue);
    }
  });
}

// csrc/sampling.cu top_k_top_p_sampling_from_probs(), IdType int32 (FlashInfer's output dtype when no
// indices are given): probs (batch x d fp32, contiguous), output (batch int32), valid (batch bool),
// top_k_arr (batch int32) / top_p_arr (batch fp32) or null for the scalars, seed/offset arrays
// (uint64, length 1 or batch; strides 0 or 1) or null for the scalars.
FI_API int fi_top_k_top_p_sampling_from_probs(int device, void* stream, float* probs, int32_t* output,
                                              bool* valid, int32_t* indices, int32_t* top_k_arr,
                                              double top_k_val, float* top_p_arr, double top_p_val,
                                              uint32_t batch, uint32_t d, int deterministic,
                                              uint64_t* seed_arr, uint64_t seed_val, uint64_t* offset_arr,
                                              uint64_t offset_val, uint32_t seed_stride,
                                              uint32_t offset_stride) {
  cudaError_t e = cudaSetDevice(device);  // csrc: ffi::CUDADeviceGuard
  if (e != cudaSuccess) return static_cast<int>(e);
  // Same argument conversions as the csrc call: top_k_val (double) -> IdType, top_p_val -> float.
  return guarded([&]() -> int {
    return static_cast<int>(sampling::TopKTopPSamplingFromProb<float, int32_t>(
        probs, top_k_arr, top_p_arr, output, valid, indices, batch, top_k_val, top_p_val, d,
        deterministic != 0, seed_arr, seed_val, offset_arr, offset_val,
        static_cast<cudaStream_t>(stream), seed_stride, offset_stride));
  });
}

}  // extern "C"
