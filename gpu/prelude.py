"""CUDA C helpers every emitted translation unit starts with (SPEC.md §2.3–§2.4, §5.4–§5.10).

Each helper exists because plain CUDA C differs from SPEC.md there (saturating float->int
conversion with NaN -> 0, NaN-ignoring min/max, shuffles whose out-of-segment lanes read
their own value) or has no C spelling (tensor-core, async-copy, mbarrier and TMA PTX), or gives one name to
an overload set (atomics).
"""

PRELUDE = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16_t;

// ---- f16/bf16: every operation is computed in float and rounded back (SPEC §2.3)
__device__ __forceinline__ float tm_f32(half x) { return __half2float(x); }
__device__ __forceinline__ float tm_f32(bf16_t x) { return __bfloat162float(x); }
__device__ __forceinline__ half tm_f16(float x) { return __float2half_rn(x); }
__device__ __forceinline__ bf16_t tm_bf16(float x) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ half tm_f16_bits(unsigned short b) { return __ushort_as_half(b); }
__device__ __forceinline__ bf16_t tm_bf16_bits(unsigned short b) { return __ushort_as_bfloat16(b); }

// ---- float -> integer: truncate toward zero, saturate, NaN -> 0 (SPEC §2.4).
// cvt.rzi.{s32,u32,s64} saturate, but turn NaN into the minimum (measured on H200), hence the
// explicit NaN test; narrower targets clamp the s32/u32 result.
__device__ __forceinline__ int32_t tm_to_i32(float x) { return x != x ? 0 : __float2int_rz(x); }
__device__ __forceinline__ int32_t tm_to_i32(double x) { return x != x ? 0 : __double2int_rz(x); }
__device__ __forceinline__ uint32_t tm_to_u32(float x) { return x != x ? 0u : __float2uint_rz(x); }
__device__ __forceinline__ uint32_t tm_to_u32(double x) { return x != x ? 0u : __double2uint_rz(x); }
__device__ __forceinline__ int64_t tm_to_i64(float x) { return x != x ? 0 : __float2ll_rz(x); }
__device__ __forceinline__ int64_t tm_to_i64(double x) { return x != x ? 0 : __double2ll_rz(x); }
template <class F> __device__ __forceinline__ int8_t tm_to_i8(F x) { return (int8_t)max(-128, min(127, tm_to_i32(x))); }
template <class F> __device__ __forceinline__ int16_t tm_to_i16(F x) { return (int16_t)max(-32768, min(32767, tm_to_i32(x))); }
template <class F> __device__ __forceinline__ uint8_t tm_to_u8(F x) { return (uint8_t)min(255u, tm_to_u32(x)); }

// ---- wrapping abs (abs(INT_MIN) == INT_MIN, SPEC §2.3)
__device__ __forceinline__ int32_t tm_abs(int32_t x) { return x < 0 ? (int32_t)(0u - (uint32_t)x) : x; }
__device__ __forceinline__ int64_t tm_abs(int64_t x) { return x < 0 ? (int64_t)(0ull - (uint64_t)x) : x; }

// ---- i8/i16 negation: nvcc 13.0 turned `(int16_t)(-x)` (neg.s16, then a sign extension) into
// +32768 for x = -32768 on sm_90 (measured on H200); negating in 32 bits behind an asm
// statement keeps the truncation that SPEC §2.3 (wrapping) needs.
__device__ __forceinline__ int32_t tm_neg32(int32_t x) { int32_t r; asm("neg.s32 %0, %1;" : "=r"(r) : "r"(x)); return r; }

// ---- signed division: MIN / -1 wraps to MIN and MIN % -1 is 0 (undefined in C, SPEC §2.3)
__device__ __forceinline__ int32_t tm_div(int32_t a, int32_t b) { return b == -1 ? (int32_t)(0u - (uint32_t)a) : a / b; }
__device__ __forceinline__ int64_t tm_div(int64_t a, int64_t b) { return b == -1 ? (int64_t)(0ull - (uint64_t)a) : a / b; }
__device__ __forceinline__ int32_t tm_rem(int32_t a, int32_t b) { return b == -1 ? 0 : a % b; }
__device__ __forceinline__ int64_t tm_rem(int64_t a, int64_t b) { return b == -1 ? 0 : a % b; }

// ---- swizzled layout: o ^ ((o & mask) >> shift) (SPEC §3.3)
__device__ __forceinline__ int32_t tm_swizzle(int32_t o, int32_t mask, int shift) { return o ^ ((o & mask) >> shift); }

// ---- warps (SPEC §5.6): lanes of a partial last warp are excluded from the member mask
__device__ __forceinline__ int tm_lane() { int l; asm("mov.u32 %0, %%laneid;" : "=r"(l)); return l; }
__device__ __forceinline__ unsigned tm_warp_mask() {
    unsigned n = blockDim.x * blockDim.y * blockDim.z;
    unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned live = min(32u, n - (tid & ~31u));
    return live == 32 ? 0xffffffffu : (1u << live) - 1u;
}
template <class T> struct tm_shfl_word { typedef T type; };
template <> struct tm_shfl_word<bool> { typedef int type; };
template <> struct tm_shfl_word<int8_t> { typedef int type; };
template <> struct tm_shfl_word<int16_t> { typedef int type; };
template <> struct tm_shfl_word<uint8_t> { typedef int type; };
#define TM_SHFL(kind, call) \
    template <class T> __device__ __forceinline__ T tm_shfl_##kind(unsigned m, T v, int x, int w) { \
        typedef typename tm_shfl_word<T>::type W; return (T)call(m, (W)v, x, w); }
TM_SHFL(xor, __shfl_xor_sync)
TM_SHFL(down, __shfl_down_sync)
TM_SHFL(up, __shfl_up_sync)
TM_SHFL(idx, __shfl_sync)
// General form: lane l reads lane s of its own width-segment, or itself when s is outside
// the segment or names a lane the (partial) warp does not have.
__device__ __forceinline__ int tm_shfl_src(int kind, int x, int w, unsigned m) {
    int l = tm_lane(), r = l & (w - 1);
    int s = kind == 0 ? (r ^ x) : kind == 1 ? r + x : kind == 2 ? r - x : (x & (w - 1));
    return (s >= 0 && s < w && ((m >> (l - r + s)) & 1u)) ? l - r + s : l;
}

// ---- min/max (SPEC §2.3): for floats a NaN operand yields the other one (IEEE minNum)
template <class T> __device__ __forceinline__ T tm_max(T a, T b) { return a < b ? b : a; }
template <class T> __device__ __forceinline__ T tm_min(T a, T b) { return b < a ? b : a; }
__device__ __forceinline__ float tm_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float tm_min(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double tm_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ double tm_min(double a, double b) { return fmin(a, b); }
__device__ __forceinline__ half tm_max(half a, half b) { return tm_f16(fmaxf(tm_f32(a), tm_f32(b))); }
__device__ __forceinline__ half tm_min(half a, half b) { return tm_f16(fminf(tm_f32(a), tm_f32(b))); }
__device__ __forceinline__ bf16_t tm_max(bf16_t a, bf16_t b) { return tm_bf16(fmaxf(tm_f32(a), tm_f32(b))); }
__device__ __forceinline__ bf16_t tm_min(bf16_t a, bf16_t b) { return tm_bf16(fminf(tm_f32(a), tm_f32(b))); }

// ---- atomics (SPEC §5.8): the verifier admits exactly CUDA's native forms
__device__ __forceinline__ int32_t tm_atomic_add(int32_t* p, int32_t v) { return atomicAdd(p, v); }
__device__ __forceinline__ uint32_t tm_atomic_add(uint32_t* p, uint32_t v) { return atomicAdd(p, v); }
__device__ __forceinline__ float tm_atomic_add(float* p, float v) { return atomicAdd(p, v); }
__device__ __forceinline__ double tm_atomic_add(double* p, double v) { return atomicAdd(p, v); }
__device__ __forceinline__ half tm_atomic_add(half* p, half v) { return atomicAdd(p, v); }
__device__ __forceinline__ bf16_t tm_atomic_add(bf16_t* p, bf16_t v) { return atomicAdd(p, v); }
__device__ __forceinline__ int32_t tm_atomic_max(int32_t* p, int32_t v) { return atomicMax(p, v); }
__device__ __forceinline__ int32_t tm_atomic_min(int32_t* p, int32_t v) { return atomicMin(p, v); }
__device__ __forceinline__ uint32_t tm_atomic_max(uint32_t* p, uint32_t v) { return atomicMax(p, v); }
__device__ __forceinline__ uint32_t tm_atomic_min(uint32_t* p, uint32_t v) { return atomicMin(p, v); }
__device__ __forceinline__ int64_t tm_atomic_max(int64_t* p, int64_t v) { return atomicMax((long long*)p, (long long)v); }
__device__ __forceinline__ int64_t tm_atomic_min(int64_t* p, int64_t v) { return atomicMin((long long*)p, (long long)v); }
__device__ __forceinline__ int32_t tm_atomic_exch(int32_t* p, int32_t v) { return atomicExch(p, v); }
__device__ __forceinline__ uint32_t tm_atomic_exch(uint32_t* p, uint32_t v) { return atomicExch(p, v); }
__device__ __forceinline__ float tm_atomic_exch(float* p, float v) { return atomicExch(p, v); }
__device__ __forceinline__ int32_t tm_atomic_cas(int32_t* p, int32_t c, int32_t v) { return atomicCAS(p, c, v); }
__device__ __forceinline__ uint32_t tm_atomic_cas(uint32_t* p, uint32_t c, uint32_t v) { return atomicCAS(p, c, v); }

// ---- asynchronous copies (SPEC §5.4): src-size 0 zero-fills without reading the source
template <int BYTES> __device__ __forceinline__ void tm_cp_async(void* dst, const void* src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    if constexpr (BYTES == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(s), "l"(src), "r"(valid ? 16 : 0) : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" :: "r"(s), "l"(src), "n"(BYTES), "r"(valid ? BYTES : 0) : "memory");
}
__device__ __forceinline__ void tm_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void tm_cp_async_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }

// ---- mbarriers (SPEC §5.9) and TMA bulk copies (§5.10), sm_90. An mbarrier is an int64_t
// shared element; init is followed by the fence that makes it visible to the TMA unit (the
// kernel then calls syncthreads() before other threads use it).
__device__ __forceinline__ unsigned tm_shared_addr(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void tm_mbarrier_init(int64_t* bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(tm_shared_addr(bar)), "r"(count) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
__device__ __forceinline__ void tm_mbarrier_arrive(int64_t* bar) {
    uint64_t state;
    asm volatile("mbarrier.arrive.shared::cta.b64 %0, [%1];" : "=l"(state) : "r"(tm_shared_addr(bar)) : "memory");
}
__device__ __forceinline__ void tm_mbarrier_arrive_expect_tx(int64_t* bar, int bytes) {
    uint64_t state;
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 %0, [%1], %2;" : "=l"(state) : "r"(tm_shared_addr(bar)), "r"(bytes) : "memory");
}
// try_wait returns false after a system-dependent time limit: retry until the phase completed
__device__ __forceinline__ void tm_mbarrier_wait(int64_t* bar, int parity) {
    unsigned done;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done) : "r"(tm_shared_addr(bar)), "r"(parity) : "memory");
    } while (!done);
}
__device__ __forceinline__ void tm_bulk_copy(void* dst, const void* src, unsigned bytes, int64_t* bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :: "r"(tm_shared_addr(dst)), "l"(src), "r"(bytes), "r"(tm_shared_addr(bar)) : "memory");
}

// ---- TMA tensor copies (SPEC §5.11): the map is a kernel parameter (__grid_constant__), the
// coordinates innermost first. A store fences the issuing thread's shared writes to the async
// proxy (syncthreads() fences every thread's in kernels that store) and waits until it is done.
struct __align__(64) tm_tensor_map { unsigned long long opaque[16]; };
__device__ __forceinline__ void tm_fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
#define TM_TMA_LOAD(N, COORDS, ...) asm volatile("cp.async.bulk.tensor." #N "d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, " COORDS "], [%2];" \
    :: "r"(tm_shared_addr(dst)), "l"((uint64_t)map), "r"(tm_shared_addr(bar)), __VA_ARGS__ : "memory")
#define TM_TMA_STORE(N, COORDS, ...) asm volatile("cp.async.bulk.tensor." #N "d.global.shared::cta.tile.bulk_group [%0, " COORDS "], [%1];" \
    :: "l"((uint64_t)map), "r"(tm_shared_addr(src)), __VA_ARGS__ : "memory")
template <int RANK> __device__ __forceinline__ void tm_tma_load(void* dst, const tm_tensor_map* map, int64_t* bar,
                                                                int c0, int c1 = 0, int c2 = 0, int c3 = 0, int c4 = 0) {
    if constexpr (RANK == 1) TM_TMA_LOAD(1, "{%3}", "r"(c0));
    if constexpr (RANK == 2) TM_TMA_LOAD(2, "{%3, %4}", "r"(c0), "r"(c1));
    if constexpr (RANK == 3) TM_TMA_LOAD(3, "{%3, %4, %5}", "r"(c0), "r"(c1), "r"(c2));
    if constexpr (RANK == 4) TM_TMA_LOAD(4, "{%3, %4, %5, %6}", "r"(c0), "r"(c1), "r"(c2), "r"(c3));
    if constexpr (RANK == 5) TM_TMA_LOAD(5, "{%3, %4, %5, %6, %7}", "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4));
}
template <int RANK> __device__ __forceinline__ void tm_tma_store(const tm_tensor_map* map, const void* src,
                                                                 int c0, int c1 = 0, int c2 = 0, int c3 = 0, int c4 = 0) {
    tm_fence_proxy_async();
    if constexpr (RANK == 1) TM_TMA_STORE(1, "{%2}", "r"(c0));
    if constexpr (RANK == 2) TM_TMA_STORE(2, "{%2, %3}", "r"(c0), "r"(c1));
    if constexpr (RANK == 3) TM_TMA_STORE(3, "{%2, %3, %4}", "r"(c0), "r"(c1), "r"(c2));
    if constexpr (RANK == 4) TM_TMA_STORE(4, "{%2, %3, %4, %5}", "r"(c0), "r"(c1), "r"(c2), "r"(c3));
    if constexpr (RANK == 5) TM_TMA_STORE(5, "{%2, %3, %4, %5, %6}", "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4));
    asm volatile("cp.async.bulk.commit_group;" ::: "memory");
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}

// ---- tensor cores (SPEC §5.7): fragments are register arrays viewed as 32-bit words
template <int NUM, bool TRANS> __device__ __forceinline__ void tm_ldmatrix(void* dst, const void* src) {
    unsigned s = (unsigned)__cvta_generic_to_shared(src);
    uint32_t* d = (uint32_t*)dst;
    if constexpr (NUM == 1 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(d[0]) : "r"(s) : "memory");
    if constexpr (NUM == 1 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(d[0]) : "r"(s) : "memory");
    if constexpr (NUM == 2 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];" : "=r"(d[0]), "=r"(d[1]) : "r"(s) : "memory");
    if constexpr (NUM == 2 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];" : "=r"(d[0]), "=r"(d[1]) : "r"(s) : "memory");
    if constexpr (NUM == 4 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                                                   : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3]) : "r"(s) : "memory");
    if constexpr (NUM == 4 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                                                  : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3]) : "r"(s) : "memory");
}
// mma.sync m16n8k16 (f16/bf16 -> f32) and m16n8k8 (tf32 -> f32): acc += a @ b
__device__ __forceinline__ void tm_mma_m16n8k16(const half* a, const half* b, float* c) {
    const uint32_t* A = (const uint32_t*)a; const uint32_t* B = (const uint32_t*)b;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(A[0]), "r"(A[1]), "r"(A[2]), "r"(A[3]), "r"(B[0]), "r"(B[1]));
}
__device__ __forceinline__ void tm_mma_m16n8k16(const bf16_t* a, const bf16_t* b, float* c) {
    const uint32_t* A = (const uint32_t*)a; const uint32_t* B = (const uint32_t*)b;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(A[0]), "r"(A[1]), "r"(A[2]), "r"(A[3]), "r"(B[0]), "r"(B[1]));
}
// ---- warpgroup MMA (SPEC §5.12, sm_90a): a matrix descriptor holds the shared address, the
// leading and stride byte offsets (each in 16-byte units, 14 bits) and the swizzle mode; the
// wgmma.mma_async helpers themselves are generated per shape (gpu/emit_wgmma.py).
__device__ __forceinline__ uint64_t tm_wgmma_desc(const void* p, int lbo, int sbo, int mode) {
    return (uint64_t)((tm_shared_addr(p) & 0x3FFFF) >> 4) | (uint64_t)((lbo & 0x3FFFF) >> 4) << 16
         | (uint64_t)((sbo & 0x3FFFF) >> 4) << 32 | (uint64_t)mode << 62;
}
__device__ __forceinline__ void tm_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void tm_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void tm_wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
// keeps the compiler from moving accesses of a wgmma's registers across a fence or wait
template <int WORDS> __device__ __forceinline__ void tm_fence_registers(float* r) {
#pragma unroll
    for (int i = 0; i < WORDS; ++i) asm volatile("" : "+f"(r[i]) :: "memory");
}
// tf32 operands are rounded to nearest (ties to even) first: the mma itself would truncate
__device__ __forceinline__ uint32_t tm_tf32(float x) { uint32_t r; asm("cvt.rn.tf32.f32 %0, %1;" : "=r"(r) : "f"(x)); return r; }
__device__ __forceinline__ void tm_mma_m16n8k8(const float* a, const float* b, float* c) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(tm_tf32(a[0])), "r"(tm_tf32(a[1])), "r"(tm_tf32(a[2])), "r"(tm_tf32(a[3])),
                   "r"(tm_tf32(b[0])), "r"(tm_tf32(b[1])));
}
"""
